// Browser test of the chat page served at GET / : drives headless Chromium over the DevTools protocol (a pipe,
// no npm packages), uploads a golden image, asks a question, waits for the streamed answer and checks that
// the text shown equals the API's answer to the same greedy request.
//   node chat_page_test.mjs BASE_URL IMAGE_PATH [SCREENSHOT.png]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [baseUrl, imagePath, screenshotPath] = process.argv.slice(2);
const question = "What do we see in this image?";
const maxTokens = 24;
const deadline = Date.now() + 120_000;   // the whole test is bounded

function fail(message) {
  console.error("FAIL: " + message);
  process.exitCode = 1;
  throw new Error(message);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- The answer the API gives (non-streaming, greedy) -------------------------------------------------------
async function apiAnswer() {
  for (;;) {
    const h = await fetch(baseUrl + "/health").catch(() => null);
    if (h && h.status === 200) break;
    if (Date.now() > deadline) fail("server never became healthy");
    await sleep(200);
  }
  const ext = imagePath.endsWith(".png") ? "png" : "jpeg";
  const uri = `data:image/${ext};base64,` + readFileSync(imagePath).toString("base64");
  const body = { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: uri } },
                                                      { type: "text", text: question }] }],
                 temperature: 0, max_tokens: maxTokens };
  const r = await fetch(baseUrl + "/v1/chat/completions", { method: "POST", body: JSON.stringify(body),
                                                             headers: { "Content-Type": "application/json" } });
  if (r.status !== 200) fail("API answered " + r.status + ": " + (await r.text()));
  return (await r.json()).choices[0].message.content;
}

// --- A minimal DevTools-protocol client over --remote-debugging-pipe (NUL-separated JSON) -------------------
class Cdp {
  constructor(child) {
    this.out = child.stdio[3];
    this.nextId = 1;
    this.waiting = new Map();
    let buf = "";
    child.stdio[4].on("data", (chunk) => {
      buf += chunk.toString("utf8");
      let idx;
      while ((idx = buf.indexOf("\0")) >= 0) {
        const msg = JSON.parse(buf.slice(0, idx));
        buf = buf.slice(idx + 1);
        const w = msg.id !== undefined && this.waiting.get(msg.id);
        if (w) {
          this.waiting.delete(msg.id);
          msg.error ? w.reject(new Error(JSON.stringify(msg.error))) : w.resolve(msg.result);
        }
      }
    });
  }
  send(method, params = {}, sessionId) {
    const id = this.nextId++;
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    this.out.write(JSON.stringify(msg) + "\0");
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }
}

// Waits for the browser to exit after Browser.close; kills it when it takes longer than two seconds.
async function stopBrowser(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const waited = await Promise.race([exited.then(() => true), sleep(2000).then(() => false)]);
  if (!waited) {
    child.kill("SIGKILL");
    await Promise.race([exited, sleep(2000)]);
  }
}

async function main() {
  const expected = await apiAnswer();
  const chromium = process.env.CHROMIUM || "chromium";
  const profile = mkdtempSync(join(tmpdir(), "idefics-chromium-"));
  const child = spawn(chromium, ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                 "--no-first-run", "--remote-debugging-pipe", "--user-data-dir=" + profile,
                                 "about:blank"],
                      { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; });
  const timer = setTimeout(() => { console.error("FAIL: timed out\n" + stderr.slice(-2000)); child.kill("SIGKILL");
                                   process.exit(1); }, deadline - Date.now());
  try {
    const cdp = new Cdp(child);
    if (process.env.CHAT_PAGE_TEST_VERBOSE) console.error("connecting to chromium");
    const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
    const page = (method, params) => cdp.send(method, params, sessionId);
    const js = async (expression) => {
      const r = await page("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) fail("page script failed: " + JSON.stringify(r.exceptionDetails));
      return r.result.value;
    };
    const waitFor = async (expression, what) => {
      if (process.env.CHAT_PAGE_TEST_VERBOSE) console.error("waiting for " + what);
      while (!(await js(expression))) {
        if (Date.now() > deadline) fail("timed out waiting for " + what);
        await sleep(100);
      }
    };
    await page("Page.enable");
    await page("Page.navigate", { url: baseUrl + "/" });
    await waitFor("document.readyState === 'complete' && !!document.getElementById('send')", "the page");
    await waitFor("document.getElementById('status').textContent === 'ready'", "the health check");

    // Attach the image through the file input, as a user picking a file would.
    const { root } = await page("DOM.getDocument", {});
    const { nodeId } = await page("DOM.querySelector", { nodeId: root.nodeId, selector: "#file" });
    await page("DOM.setFileInputFiles", { nodeId, files: [imagePath] });
    await waitFor("document.querySelectorAll('#thumbs img').length === 1", "the thumbnail");

    await js(`document.getElementById('temperature').value = '0';
              document.getElementById('max-tokens').value = '${maxTokens}';
              document.getElementById('input').value = ${JSON.stringify(question)};
              document.getElementById('send').click(); true`);
    await waitFor("document.querySelector('.msg.assistant') !== null", "the answer bubble");
    await waitFor("document.body.dataset.state === 'idle' && document.querySelector('.msg.assistant').dataset.final !== undefined",
                  "the streamed answer");
    const shown = await js("document.querySelector('.msg.assistant .text').textContent");
    const userImages = await js("document.querySelectorAll('.msg.user .imgs img').length");
    const errors = await js("document.querySelectorAll('.msg.error').length");
    if (screenshotPath) {
      const shot = await page("Page.captureScreenshot", { format: "png" });
      writeFileSync(screenshotPath, Buffer.from(shot.data, "base64"));
    }
    if (errors) fail("the page shows an error: " + (await js("document.querySelector('.msg.error').textContent")));
    if (userImages !== 1) fail("the question bubble shows " + userImages + " images, expected 1");
    if (shown !== expected) fail(`the page shows ${JSON.stringify(shown)}, the API answered ${JSON.stringify(expected)}`);

    // "New chat" forgets the conversation.
    await js("document.getElementById('new-chat').click(); true");
    await waitFor("document.querySelectorAll('.msg').length === 0", "the new chat");
    await cdp.send("Browser.close").catch(() => {});
    console.log(`PASS: the page showed the API's answer (${shown.length} characters)`);
  } finally {
    clearTimeout(timer);
    await stopBrowser(child);
    try {
      // Chromium's helper processes may still be writing to the profile for a moment after the browser exits.
      rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    } catch (e) {
      console.error("note: could not remove the browser profile " + profile + ": " + e.message);
    }
  }
}

main().catch((e) => { if (!process.exitCode) { console.error("FAIL: " + e.message); process.exitCode = 1; } });

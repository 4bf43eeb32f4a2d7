// Ctrl-C / SIGTERM for long-running writers (synth, quantize): the first signal sets a flag that their loops
// poll, so they stop at the next tensor and clean up (temporary files and folders) instead of being killed
// half-way; a second signal ends the process at once.
#pragma once

namespace idefics {

// Installs the SIGINT/SIGTERM handlers. Call once from a command that polls InterruptRequested().
void CatchInterrupts();
// True once SIGINT or SIGTERM arrived after CatchInterrupts().
bool InterruptRequested();

}  // namespace idefics

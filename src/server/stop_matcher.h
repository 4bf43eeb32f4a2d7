// Applies OpenAI "stop" strings to streamed text: text that might be the start of a stop string is held back
// until it is known not to be one. Mirrors transformers' StopStringCriteria (output excludes the stop string).
#pragma once

#include <string>
#include <vector>

namespace idefics::server {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Adds generated text; returns the text now safe to send. Sets stopped() once a stop string appeared (the
  // stop string and anything after it are dropped).
  std::string Add(const std::string& text);
  // At the end of generation: the held-back text (nothing after a stop).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace idefics::server

// Errors of the HTTP API in OpenAI's JSON shape {"error": {"message", "type", "param", "code"}}.
// Mirrors the error objects of the OpenAI REST API (openai-python's APIError fields).
#pragma once

#include <string>

#include "idefics/status.h"

namespace idefics::server {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";  // or "authentication_error", "server_error", ...
  std::string param;                            // the offending field ("" -> null)
  std::string code;                             // machine-readable ("" -> null)

  std::string ToJson() const;
};

ApiError BadRequest(std::string message, std::string param = "", std::string code = "");
ApiError TooLarge(std::string message, std::string param = "", std::string code = "request_too_large");
ApiError Unprocessable(std::string message, std::string param = "", std::string code = "");
ApiError ServerError(std::string message);

// Maps a library Status from request handling (image decoding, prompt building) to an API error.
ApiError FromStatus(const Status& status, const std::string& param);

}  // namespace idefics::server

// Errors of the HTTP API in OpenAI's JSON shape (see api_error.h).
// Mirrors the error objects of the OpenAI REST API.
#include "server/api_error.h"

#include <nlohmann/json.hpp>

namespace idefics::server {

std::string ApiError::ToJson() const {
  nlohmann::json e = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  // Replacement of invalid UTF-8 keeps a hostile request's bytes (echoed in messages) from throwing.
  return nlohmann::json{{"error", e}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ApiError BadRequest(std::string message, std::string param, std::string code) {
  return {400, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

ApiError TooLarge(std::string message, std::string param, std::string code) {
  return {413, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

ApiError Unprocessable(std::string message, std::string param, std::string code) {
  return {422, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

ApiError ServerError(std::string message) { return {500, std::move(message), "server_error", "", ""}; }

ApiError FromStatus(const Status& status, const std::string& param) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kUnimplemented:
      return BadRequest(status.message(), param);
    case StatusCode::kResourceExhausted:
      return TooLarge(status.message(), param);
    case StatusCode::kOutOfRange:
      return Unprocessable(status.message(), param);
    default:
      return ServerError(status.message());
  }
}

}  // namespace idefics::server

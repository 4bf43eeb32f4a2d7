# Build-time step: writes the C++ header OUT holding the text of IN as a raw string literal named NAME
# (used for the chat page web/index.html). Run as: cmake -DIN=... -DOUT=... -DNAME=... -P embed_file.cmake
file(READ "${IN}" content)
string(FIND "${content}" ")embedded\"" pos)
if(NOT pos EQUAL -1)
  message(FATAL_ERROR "${IN} must not contain the raw-string delimiter )embedded\"")
endif()
file(WRITE "${OUT}.tmp" "// Generated from ${IN} at build time (do not edit).\n#pragma once\n\n"
  "namespace idefics::server {\n\ninline constexpr const char ${NAME}[] = R\"embedded(${content})embedded\";\n\n"
  "}  // namespace idefics::server\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")

# cmake -DIN=docs/api.md -DOUT=openapi_json.c -P openapi_embed.cmake
# Writes the first ```json fenced block of IN as a C array (intake_openapi_json, NUL-terminated,
# and intake_openapi_json_len without the NUL). Fails when there is no such block or it does
# not parse as a JSON object with an "openapi" member.
file(READ ${IN} whole)
# The fences are whole lines: "```json" opens, "```" closes.
string(FIND "${whole}" "\n```json\n" open)
if(open EQUAL -1)
  message(FATAL_ERROR "${IN}: no ```json block (the OpenAPI document)")
endif()
math(EXPR start "${open} + 9")
string(SUBSTRING "${whole}" ${start} -1 rest)
string(FIND "${rest}" "\n```" close)
if(close EQUAL -1)
  message(FATAL_ERROR "${IN}: the ```json block is not closed")
endif()
math(EXPR close "${close} + 1")
string(SUBSTRING "${rest}" 0 ${close} text)
if(NOT CMAKE_VERSION VERSION_LESS 3.19)
  string(JSON openapi ERROR_VARIABLE json_error GET "${text}" openapi)
  if(json_error)
    message(FATAL_ERROR "${IN}: the ```json block is not a valid OpenAPI document: ${json_error}")
  endif()
endif()
# Bytes, not text: the document goes in unchanged whatever it contains.
file(WRITE ${OUT}.txt "${text}")
file(READ ${OUT}.txt hex HEX)
file(REMOVE ${OUT}.txt)
string(LENGTH "${hex}" hex_len)
math(EXPR len "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT}.tmp
  "/* Generated from docs/api.md by services/intake/openapi_embed.cmake: do not edit. */\n"
  "#include <stddef.h>\n"
  "const char intake_openapi_json[] = {\n    ${bytes}0x00\n};\n"
  "const size_t intake_openapi_json_len = ${len};\n")
file(RENAME ${OUT}.tmp ${OUT})

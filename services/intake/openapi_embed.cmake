# cmake -DIN="docs/api.md;docs/api/calls.md;..." -DOUT=openapi_json.c -P openapi_embed.cmake
# Collects every ```json fenced block of the IN files, in order, and writes them as one JSON
# array text (intake_openapi_json, NUL-terminated, and intake_openapi_json_len without the NUL).
# The first block is the OpenAPI document; each later block is a fragment ({"paths": …,
# "components": …}) that intake merges into it at start (api_system.c), so every concern keeps
# its operations next to its prose. Fails when a block is not closed or is not a JSON object,
# or when the first has no "openapi" member.
cmake_minimum_required(VERSION 3.19)
set(blocks "")
set(count 0)
foreach(file ${IN})
  file(READ ${file} whole)
  while(TRUE)
    # The fences are whole lines: "```json" opens, "```" closes.
    string(FIND "${whole}" "\n```json\n" open)
    if(open EQUAL -1)
      break()
    endif()
    math(EXPR start "${open} + 9")
    string(SUBSTRING "${whole}" ${start} -1 rest)
    string(FIND "${rest}" "\n```" close)
    if(close EQUAL -1)
      message(FATAL_ERROR "${file}: a ```json block is not closed")
    endif()
    math(EXPR close1 "${close} + 1")
    string(SUBSTRING "${rest}" 0 ${close1} text)
    math(EXPR after "${close} + 4")
    string(SUBSTRING "${rest}" ${after} -1 whole)
    string(JSON kind ERROR_VARIABLE json_error TYPE "${text}")
    if(json_error OR NOT kind STREQUAL "OBJECT")
      message(FATAL_ERROR "${file}: a ```json block is not a JSON object: ${json_error}")
    endif()
    if(count EQUAL 0)
      string(JSON openapi ERROR_VARIABLE json_error GET "${text}" openapi)
      if(json_error)
        message(FATAL_ERROR "${file}: the first ```json block is not an OpenAPI document")
      endif()
      set(blocks "${text}")
    else()
      set(blocks "${blocks},\n${text}")
    endif()
    math(EXPR count "${count} + 1")
  endwhile()
endforeach()
if(count EQUAL 0)
  message(FATAL_ERROR "${IN}: no ```json block (the OpenAPI document)")
endif()
set(text "[\n${blocks}\n]")
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

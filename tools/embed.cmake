# embed.cmake: turn a file into a C header holding it as a NUL-terminated char array.
# cmake -DIN=FILE -DOUT=HEADER -DNAME=IDENTIFIER -P embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}" "/* generated from ${IN} by tools/embed.cmake; do not edit */\nstatic const char ${NAME}[] = {${body}0x00};\n")

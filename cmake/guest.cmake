# kinject_guest_elf(NAME SOURCES... [LINKER_SCRIPT file] [INCLUDES dirs...])
# Builds a freestanding x86-64 guest ELF with the system gcc and GNU as.  The
# guest never sees host libraries, PIE, the red zone or SSE.
set(KINJECT_GUEST_CFLAGS
  -ffreestanding -fno-pie -fno-pic -mcmodel=kernel -mno-red-zone
  -mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables
  -fcf-protection=none -fno-omit-frame-pointer -fno-builtin -Wall -Wextra
  -Wno-unused-parameter)

function(kinject_guest_elf NAME)
  cmake_parse_arguments(G "" "LINKER_SCRIPT" "SOURCES;INCLUDES" ${ARGN})
  add_executable(${NAME} ${G_SOURCES})
  set_target_properties(${NAME} PROPERTIES SUFFIX ".elf"
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/guest)
  target_include_directories(${NAME} PRIVATE ${KINJECT_ABI_INCLUDE} ${G_INCLUDES})
  target_compile_options(${NAME} PRIVATE
    $<$<COMPILE_LANGUAGE:C>:${KINJECT_GUEST_CFLAGS}>
    $<$<COMPILE_LANGUAGE:ASM>:-fno-pie>)
  target_link_options(${NAME} PRIVATE -nostdlib -static -no-pie
    -Wl,--build-id=none -Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack
    -Wl,-T,${G_LINKER_SCRIPT})
  set_target_properties(${NAME} PROPERTIES LINK_DEPENDS ${G_LINKER_SCRIPT})
endfunction()

# flowgrad_add_plugin(NAME SOURCE...): a flowgrad plugin, the shared library lib<NAME>.so that `flowgrad
# --plugin`, a spec's `plugins:` list and flowgrad::load_plugin() load at run time (docs/plugins.md). It is the
# two lines
#
#   add_library(NAME MODULE SOURCE...)
#   target_link_libraries(NAME PRIVATE flowgrad::plugin)
#
# flowgrad::plugin carries flowgrad's headers, C++20 and its dependencies' shared libraries, but none of
# flowgrad's own (static) libraries: a plugin's references to flowgrad resolve against the program that loads
# it, so that it registers into that program's registry and not into a copy of its own.
function(flowgrad_add_plugin name)
  if(NOT ARGN)
    message(FATAL_ERROR "flowgrad_add_plugin(${name}) needs source files")
  endif()
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE flowgrad::plugin)
endfunction()

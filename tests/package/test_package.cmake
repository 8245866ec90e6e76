# The package test: installs this build to a fresh prefix, configures and builds examples/consumer (an
# outside project using find_package(flowgrad)) together with the README's C++ example, and runs both:
# the consumer trains the installed zoo/dense.yaml for a few steps and writes a checkpoint and NPZ weights.
# It also builds examples/plugins against the installed package; the installed program and the consumer load
# them (examples/plugins/autoencoder.yaml lists them).
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DCXX=... -DBUILD_TYPE=... [-DLAUNCHER=...] -P test_package.cmake
# Exits 77 (skipped) before training when Fashion-MNIST is not installed.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${what} failed (${status}):\n${out}")
  endif()
  set(output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(installed include/flowgrad/flowgrad.h include/flowgrad/version.h include/flowgrad/graph/plan.h
                  include/flowgrad/plugin.h include/flowgrad/graph/plugin.h
                  lib/cmake/flowgrad/flowgradConfig.cmake lib/cmake/flowgrad/flowgradConfigVersion.cmake
                  lib/cmake/flowgrad/flowgradPlugin.cmake bin/flowgrad share/flowgrad/zoo/dense.yaml)
  if(NOT EXISTS ${prefix}/${installed})
    message(FATAL_ERROR "cmake --install did not install ${installed}")
  endif()
endforeach()

# The README's C++ example, exactly as written there.
file(READ ${SOURCE_DIR}/README.md readme)
string(REGEX MATCH "```cpp\n([^`]*)```" block "${readme}")
if(NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "README.md has no ```cpp block")
endif()
file(WRITE ${WORK_DIR}/readme_example.cpp "${CMAKE_MATCH_1}")

# Outside projects built against the installed package, with this build's compiler.
set(against_package -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DCMAKE_CXX_COMPILER=${CXX})
if(LAUNCHER)
  list(APPEND against_package -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
run("configuring examples/consumer against the installed package" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/consumer
    -B ${WORK_DIR}/build ${against_package} -DREADME_EXAMPLE=${WORK_DIR}/readme_example.cpp)
run("building examples/consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build -j2)
run("the README's C++ example" ${WORK_DIR}/build/readme_example)
message(STATUS "readme_example: ${output}")

# The example plugins, built out of tree against the installed package (flowgrad_add_plugin) into the folder
# examples/plugins/autoencoder.yaml expects them in, then loaded and checked by the installed program.
set(plugins ${WORK_DIR}/plugins)
file(COPY ${SOURCE_DIR}/examples/plugins/autoencoder.yaml DESTINATION ${plugins})
run("configuring examples/plugins against the installed package" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/plugins
    -B ${plugins}/build ${against_package})
run("building examples/plugins" ${CMAKE_COMMAND} --build ${plugins}/build -j2)
run("the installed flowgrad with the spec's plugins" ${prefix}/bin/flowgrad summary ${plugins}/autoencoder.yaml)
if(NOT output MATCHES "hidden_swish +swish" OR NOT output MATCHES "encoding_prelu +prelu")
  message(FATAL_ERROR "flowgrad summary shows no plugin layers:\n${output}")
endif()
run("gradcheck of the plugins' ops" ${prefix}/bin/flowgrad gradcheck --plugin ${plugins}/build/libswish.so
    --plugin ${plugins}/build/libprelu.so)
if(NOT output MATCHES "prelu_grad .* ok\n.*PASS: 0 failure")
  message(FATAL_ERROR "gradcheck of the plugins' ops did not pass:\n${output}")
endif()
message(STATUS "the example plugins, built against the installed package:\n${output}")

if(NOT EXISTS /usr/share/datasets/fashion-mnist AND NOT DEFINED ENV{FLOWGRAD_DATA})
  message(STATUS "Fashion-MNIST is not installed: the consumer's training is skipped")
  cmake_language(EXIT 77)
endif()
run("examples/consumer's train_dense" ${WORK_DIR}/build/train_dense ${prefix}/share/flowgrad/zoo/dense.yaml ${WORK_DIR}/out 3)
message(STATUS "train_dense: ${output}")
if(NOT output MATCHES "3 steps on .*train loss 0\\.[0-9]+, test loss 0\\.[0-9]+")
  message(FATAL_ERROR "train_dense printed no losses:\n${output}")
endif()
foreach(written checkpoint.fgck weights.npz)
  if(NOT EXISTS ${WORK_DIR}/out/${written})
    message(FATAL_ERROR "train_dense did not write ${written}")
  endif()
endforeach()
run("flowgrad eval on the consumer's checkpoint" ${prefix}/bin/flowgrad eval ${prefix}/share/flowgrad/zoo/dense.yaml
    --checkpoint ${WORK_DIR}/out/checkpoint.fgck)
# A program built against the package loads plugins too (the spec's plugins: list): the exported targets link
# it with -rdynamic, which the plugins' references to flowgrad resolve against.
run("examples/consumer's train_dense on the plugins' spec" ${WORK_DIR}/build/train_dense ${plugins}/autoencoder.yaml
    ${WORK_DIR}/plugins_out 3)
message(STATUS "train_dense with plugins: ${output}")
if(NOT output MATCHES "plugin_autoencoder, 3 steps on .*train loss 0\\.[0-9]+, test loss 0\\.[0-9]+")
  message(FATAL_ERROR "train_dense printed no losses for the plugins' spec:\n${output}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})

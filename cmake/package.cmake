# `cmake --install` makes flowgrad a CMake package: headers under include/flowgrad, the static libraries,
# the `flowgrad` program, and flowgradConfig.cmake with its version file, so that an outside project writes
#
#   find_package(flowgrad 0.4 REQUIRED)
#   target_link_libraries(app PRIVATE flowgrad::flowgrad)
#
# flowgrad::flowgrad is everything (the per-folder targets flowgrad::graph, ::ops, ::autodiff, ::zoo and
# ::tools exist too); it carries the include paths, cxx_std_20 and the dependencies, which the config file
# finds again with find_dependency. examples/consumer is such a project, built by the test suite.
# flowgrad::plugin and flowgrad_add_plugin() (cmake/flowgradPlugin.cmake) build plugins, shared libraries of
# ops and layers loaded at run time; examples/plugins is such a project, built by the test suite too.
include(CMakePackageConfigHelpers)

add_library(flowgrad_all INTERFACE)
target_link_libraries(flowgrad_all INTERFACE flowgrad_tools flowgrad_zoo flowgrad_autodiff flowgrad_ops flowgrad_graph)
set_target_properties(flowgrad_all PROPERTIES EXPORT_NAME flowgrad)
add_library(flowgrad::flowgrad ALIAS flowgrad_all)
foreach(folder graph ops autodiff zoo tools plugin)
  set_target_properties(flowgrad_${folder} PROPERTIES EXPORT_NAME ${folder})
endforeach()
# The static libraries list their private dependencies for the final link, the warnings target among them:
# it is exported for its link options (a sanitizer build's -fsanitize), which a consumer's link needs.
set_target_properties(flowgrad_warnings PROPERTIES EXPORT_NAME build_flags)

set(FLOWGRAD_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/flowgrad)
install(TARGETS flowgrad_graph flowgrad_ops flowgrad_autodiff flowgrad_zoo flowgrad_tools flowgrad_all flowgrad_warnings
                flowgrad_plugin
  EXPORT flowgradTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS flowgrad RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(folder graph ops autodiff zoo tools)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${folder}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/flowgrad/${folder}
    FILES_MATCHING PATTERN "*.h")
endforeach()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/flowgrad ${PROJECT_BINARY_DIR}/include/flowgrad
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/zoo/ DESTINATION ${CMAKE_INSTALL_DATADIR}/flowgrad/zoo FILES_MATCHING PATTERN "*.yaml")
install(EXPORT flowgradTargets NAMESPACE flowgrad:: DESTINATION ${FLOWGRAD_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/flowgradConfig.cmake.in
  ${PROJECT_BINARY_DIR}/flowgradConfig.cmake INSTALL_DESTINATION ${FLOWGRAD_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/flowgradConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/flowgradConfig.cmake ${PROJECT_BINARY_DIR}/flowgradConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/flowgradPlugin.cmake DESTINATION ${FLOWGRAD_CMAKE_DIR})

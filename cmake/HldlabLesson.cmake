# hldlab_add_lesson(<name> SOURCES <files...> [TESTS <test files...>])
#
# A lesson of the hldlab tree: the plugin (see hldlab_add_plugin) lands in the plugin directory
# next to the executable and is installed with it. TESTS become a Catch2 executable
# test_<name>, run by CTest, which loads the built plugins.
include(${CMAKE_CURRENT_LIST_DIR}/HldlabPlugin.cmake)

function(hldlab_add_lesson name)
  cmake_parse_arguments(LESSON "" "" "SOURCES;TESTS" ${ARGN})
  hldlab_add_plugin(${name} SOURCES ${LESSON_SOURCES})
  set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${HLDLAB_PLUGIN_OUTPUT_DIR})
  install(TARGETS ${name} LIBRARY DESTINATION ${HLDLAB_INSTALL_PLUGIN_DIR})
  set_property(GLOBAL APPEND PROPERTY HLDLAB_LESSONS ${name})
  if(LESSON_TESTS AND TARGET hldlab_test_support)
    add_executable(test_${name} ${LESSON_TESTS})
    target_link_libraries(test_${name} PRIVATE hldlab_test_support)
    add_dependencies(test_${name} ${name})
    catch_discover_tests(test_${name} TEST_PREFIX "${name}: ")
  endif()
endfunction()

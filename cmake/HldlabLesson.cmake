# hldlab_add_lesson(<name> SOURCES <files...> [TESTS <test files...>])
#
# Builds plugins/<name>/ as a MODULE library <name>.so in the plugin directory, with the flags
# every plugin needs: hidden visibility, -fno-gnu-unique (so dlclose really unloads) and
# --no-undefined (a plugin links nothing from the host). TESTS become a Catch2 executable
# test_<name>, run by CTest, which loads the built plugins.
function(hldlab_add_lesson name)
  cmake_parse_arguments(LESSON "" "" "SOURCES;TESTS" ${ARGN})
  if(NOT LESSON_SOURCES)
    message(FATAL_ERROR "hldlab_add_lesson(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${LESSON_SOURCES})
  target_link_libraries(${name} PRIVATE hldlab::sdk)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY ${HLDLAB_PLUGIN_OUTPUT_DIR})
  target_compile_options(${name} PRIVATE -fno-gnu-unique)
  set_property(GLOBAL APPEND PROPERTY HLDLAB_LESSONS ${name})
  if(NOT HLDLAB_SANITIZE AND NOT HLDLAB_FUZZ)  # sanitizer runtimes come from the host
    target_link_options(${name} PRIVATE LINKER:--no-undefined)
  endif()
  if(LESSON_TESTS AND TARGET hldlab_test_support)
    add_executable(test_${name} ${LESSON_TESTS})
    target_link_libraries(test_${name} PRIVATE hldlab_test_support)
    add_dependencies(test_${name} ${name})
    catch_discover_tests(test_${name} TEST_PREFIX "${name}: ")
  endif()
endfunction()

# hldlab_add_plugin(<name> SOURCES <files...>)
#
# Builds a lesson plugin: a MODULE library <name>.so linked only against the SDK (hldlab::sdk),
# with the flags every plugin needs: hidden visibility, -fno-gnu-unique (GCC; otherwise dlclose
# never unloads the library) and --no-undefined (a plugin links nothing from the host).
# Used inside the hldlab tree (through hldlab_add_lesson) and, installed with the SDK, by plugins
# built out of tree after find_package(hldlab).
function(hldlab_add_plugin name)
  cmake_parse_arguments(PLUGIN "" "" "SOURCES" ${ARGN})
  if(NOT PLUGIN_SOURCES)
    message(FATAL_ERROR "hldlab_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${PLUGIN_SOURCES})
  target_link_libraries(${name} PRIVATE hldlab::sdk)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_compile_options(${name} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)
  if(NOT HLDLAB_SANITIZE AND NOT HLDLAB_FUZZ)  # sanitizer runtimes come from the host
    target_link_options(${name} PRIVATE LINKER:--no-undefined)
  endif()
endfunction()

# Passed as -DCMAKE_PROJECT_INCLUDE=... when interface packages are built against the ROS 2
# wheels from the Python package index. Their exported *__rosidl_generator_py targets name the
# include directories of the machine that built the wheels (its Python and NumPy headers), and
# CMake refuses imported targets with a missing include directory when it generates. At the end
# of configure this drops such directories from every imported target; rosidl_generator_py adds
# this machine's Python and NumPy include directories itself. Does nothing on a ROS install.

function(_grounding_agent_drop_missing_include_dirs directory)
  get_property(targets DIRECTORY "${directory}" PROPERTY IMPORTED_TARGETS)
  foreach(target IN LISTS targets)
    get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT dirs)
      continue()
    endif()
    set(kept "")
    set(changed FALSE)
    foreach(dir IN LISTS dirs)
      if(dir MATCHES "^\\$<" OR EXISTS "${dir}")
        list(APPEND kept "${dir}")
      else()
        set(changed TRUE)
      endif()
    endforeach()
    if(changed)
      set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${kept}")
    endif()
  endforeach()
  get_property(subdirectories DIRECTORY "${directory}" PROPERTY SUBDIRECTORIES)
  foreach(subdirectory IN LISTS subdirectories)
    _grounding_agent_drop_missing_include_dirs("${subdirectory}")
  endforeach()
endfunction()

function(_grounding_agent_drop_missing_include_dirs_everywhere)
  _grounding_agent_drop_missing_include_dirs("${CMAKE_SOURCE_DIR}")
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}"
  CALL _grounding_agent_drop_missing_include_dirs_everywhere)

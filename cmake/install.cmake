# Installing hepml as a library for experiment frameworks (CMSSW, Athena, O2,
# Gaudi): the public headers of include/hepml, the inference core as one shared
# library (libhepml.so) and one static archive (libhepml.a), the `hepml`
# command, a CMake package (find_package(hepml CONFIG) -> hepml::runtime,
# hepml::runtime_static) and a pkg-config file (hepml.pc, hepml-static.pc).
# `cpack -G DEB` turns the same install tree into a Debian package.
#
# The core is built as static, position-independent libraries (one per src/
# folder, private headers included as "folder/file.h"); neither they nor src/
# headers are installed. Both installed forms bundle them whole, because the
# operator table registers its kernels from static initialisers that a linker
# would otherwise drop.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(HEPML_CORE_LIBS hepml_tensor hepml_graph hepml_passes hepml_onnx hepml_ops hepml_runtime)
set(HEPML_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/hepml)
# What the public headers (status.h, tensor.h, session.h) include.
set(HEPML_PUBLIC_DEPS absl::status absl::statusor absl::strings absl::inlined_vector absl::span TBB::tbb)

# libhepml.so: the core, whole. Its own dependencies (ONNX, protobuf, Highway,
# RE2, libpng, libjpeg) are private: users see only the public headers'.
add_library(hepml_shared SHARED ${CMAKE_CURRENT_LIST_DIR}/empty.cc)
set_target_properties(hepml_shared PROPERTIES
  OUTPUT_NAME hepml EXPORT_NAME runtime
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
  INSTALL_RPATH "$ORIGIN")
# hepml_ops comes whole through hepml_runtime's link (hepml_op_table); the
# other libraries are named whole here, in front of that link line.
set(HEPML_WHOLE)
foreach(lib hepml_tensor hepml_graph hepml_passes hepml_onnx hepml_runtime)
  list(APPEND HEPML_WHOLE $<TARGET_FILE:${lib}>)
endforeach()
target_link_options(hepml_shared PRIVATE LINKER:--whole-archive ${HEPML_WHOLE} LINKER:--no-whole-archive)
target_link_libraries(hepml_shared PRIVATE hepml_runtime INTERFACE ${HEPML_PUBLIC_DEPS})
target_include_directories(hepml_shared INTERFACE
  $<BUILD_INTERFACE:${HEPML_PUBLIC_INCLUDE}> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_options(hepml_shared PRIVATE -Wl,--no-undefined)

# libhepml.a: the core merged into one relocatable object (ld -r) inside one
# archive. Any reference to it (Session::Create) then brings the whole core,
# the operator registrations included, without --whole-archive in the user's
# link line.
set(HEPML_STATIC_OBJECT ${CMAKE_BINARY_DIR}/hepml_static/hepml_core.o)
set(HEPML_STATIC_ARCHIVE ${CMAKE_BINARY_DIR}/hepml_static/libhepml.a)
set(HEPML_CORE_FILES)
foreach(lib ${HEPML_CORE_LIBS})
  list(APPEND HEPML_CORE_FILES $<TARGET_FILE:${lib}>)
endforeach()
add_custom_command(OUTPUT ${HEPML_STATIC_ARCHIVE}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/hepml_static
  COMMAND ${CMAKE_COMMAND} -E rm -f ${HEPML_STATIC_ARCHIVE}
  COMMAND ${CMAKE_LINKER} -r -o ${HEPML_STATIC_OBJECT} --whole-archive ${HEPML_CORE_FILES} --no-whole-archive
  COMMAND ${CMAKE_AR} qc ${HEPML_STATIC_ARCHIVE} ${HEPML_STATIC_OBJECT}
  COMMAND ${CMAKE_RANLIB} ${HEPML_STATIC_ARCHIVE}
  DEPENDS ${HEPML_CORE_LIBS}
  COMMENT "ld -r: libhepml.a")
add_custom_target(hepml_static ALL DEPENDS ${HEPML_STATIC_ARCHIVE})

# The headers of what is installed: the core's, and with the services the
# headers of the parts whose libraries come with them.
set(HEPML_INSTALL_HEADERS status.h tensor.h session.h)
if(TARGET hepml_remote)
  list(APPEND HEPML_INSTALL_HEADERS remote_session.h)
endif()
list(TRANSFORM HEPML_INSTALL_HEADERS PREPEND ${HEPML_PUBLIC_INCLUDE}/hepml/)
install(FILES ${HEPML_INSTALL_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hepml)
install(TARGETS hepml_shared EXPORT hepmlTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${HEPML_STATIC_ARCHIVE} DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS hepml RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT hepmlTargets NAMESPACE hepml:: DESTINATION ${HEPML_INSTALL_CMAKEDIR})

# libhepml_remote.so (hepml::remote, include/hepml/remote_session.h), with
# the services: RemoteSession's sources again, over libhepml.so (one copy of
# the core per process) and the generated gRPC stubs (private).
if(TARGET hepml_remote)
  get_target_property(HEPML_REMOTE_SOURCES hepml_remote SOURCES)
  list(TRANSFORM HEPML_REMOTE_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/src/remote/)
  add_library(hepml_remote_shared SHARED ${HEPML_REMOTE_SOURCES})
  set_target_properties(hepml_remote_shared PROPERTIES
    OUTPUT_NAME hepml_remote EXPORT_NAME remote
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
    INSTALL_RPATH "$ORIGIN")
  target_include_directories(hepml_remote_shared PRIVATE ${HEPML_PRIVATE_INCLUDE})
  target_link_libraries(hepml_remote_shared PUBLIC hepml_shared
    PRIVATE hepml_serve_proto hepml_grpc_channel absl::strings Threads::Threads)
  target_link_options(hepml_remote_shared PRIVATE -Wl,--no-undefined)
  install(TARGETS hepml_remote_shared EXPORT hepmlTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/hepmlConfig.cmake.in
  ${CMAKE_BINARY_DIR}/hepmlConfig.cmake INSTALL_DESTINATION ${HEPML_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/hepmlConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/hepmlConfig.cmake ${CMAKE_BINARY_DIR}/hepmlConfigVersion.cmake
  DESTINATION ${HEPML_INSTALL_CMAKEDIR})

# The Python module (src/python), where Debian's python3 looks for modules.
if(TARGET hepml_python)
  install(TARGETS hepml_python LIBRARY DESTINATION lib/python3/dist-packages)
  install(FILES ${CMAKE_SOURCE_DIR}/src/python/hepml.pyi DESTINATION lib/python3/dist-packages)
endif()

# pkg-config: prefix found from the .pc file's own place, so an unpacked
# package (dpkg -x) or a moved prefix works as well as the install prefix.
file(RELATIVE_PATH HEPML_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" HEPML_PC_TO_PREFIX "${HEPML_PC_TO_PREFIX}")
foreach(pc hepml hepml-static)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/${pc}.pc.in ${CMAKE_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()

# cpack -G DEB: one package with the libraries, headers, CMake and pkg-config
# files and the command. Depends on the Debian packages of the shared
# library's dependencies and on the -dev packages the public headers include.
set(CPACK_PACKAGE_NAME hepml)
set(CPACK_PACKAGE_VENDOR "hepml")
set(CPACK_PACKAGE_CONTACT "hepml developers <hepml@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "ML inference for high-energy physics: hepml::Session and the hepml command")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "libabsl-dev, libtbb-dev, libabsl20220623, libtbb12, libonnx1, libprotobuf32, libhwy1, libre2-9, libpng16-16, libjpeg62-turbo, zlib1g")
if(HEPML_SERVICES)
  # The full command and libhepml_remote.so need gRPC, HDF5, XRootD, ...:
  # dpkg-shlibdeps (dpkg-dev) adds their packages.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()
include(CPack)

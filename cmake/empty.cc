// libhepml.so is made of whole static libraries; CMake wants one source.

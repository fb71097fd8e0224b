# Sanitizer build options: ASan+UBSan together, or TSan alone (they cannot be combined).
if(NSQ_SANITIZE_ADDRESS AND NSQ_SANITIZE_THREAD)
    message(FATAL_ERROR "NSQ_SANITIZE_ADDRESS and NSQ_SANITIZE_THREAD cannot be combined")
endif()

if(NSQ_SANITIZE_ADDRESS)
    set(NSQ_SAN_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined
        -fno-omit-frame-pointer)
elseif(NSQ_SANITIZE_THREAD)
    set(NSQ_SAN_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
endif()

if(NSQ_SAN_FLAGS)
    add_compile_options(${NSQ_SAN_FLAGS})
    add_link_options(${NSQ_SAN_FLAGS})
endif()

/* supsupd: forwards to the C API subset the tfjs-node addon uses (see supsupd_tf_c_api.h). */
#include "tensorflow/c/supsupd_tf_c_api.h"

/*
 * supsupd: the subset of the TensorFlow C API (and eager C API) that the
 * @tensorflow/tfjs-node 4.22.0 addon compiles against, written for this project.
 *
 * Why this file exists: the libtensorflow that deploy/native/setup-native-backend.sh
 * takes from Maven Central (org.tensorflow:tensorflow-core-native, TF Java) ships the
 * shared libraries (libtensorflow_cc.so.2, libtensorflow_framework.so.2) but no C
 * headers, and the official libtensorflow tarball that carries them is not reachable
 * here. The declarations below follow the C API's stable ABI; every signature,
 * enum value and struct layout was checked against the JavaCPP bindings in
 * tensorflow-core-native-<version>-sources.jar (org/tensorflow/internal/c_api/...),
 * and setup-native-backend.sh checks with nm that the library
 * exports every function the built addon imports.
 */
#ifndef SUPSUPD_TF_C_API_H_
#define SUPSUPD_TF_C_API_H_

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tf_datatype.h ---- */
typedef enum TF_DataType {
  TF_FLOAT = 1,
  TF_DOUBLE = 2,
  TF_INT32 = 3,
  TF_UINT8 = 4,
  TF_INT16 = 5,
  TF_INT8 = 6,
  TF_STRING = 7,
  TF_COMPLEX64 = 8,
  TF_COMPLEX = 8,
  TF_INT64 = 9,
  TF_BOOL = 10,
  TF_QINT8 = 11,
  TF_QUINT8 = 12,
  TF_QINT32 = 13,
  TF_BFLOAT16 = 14,
  TF_QINT16 = 15,
  TF_QUINT16 = 16,
  TF_UINT16 = 17,
  TF_COMPLEX128 = 18,
  TF_HALF = 19,
  TF_RESOURCE = 20,
  TF_VARIANT = 21,
  TF_UINT32 = 22,
  TF_UINT64 = 23,
  TF_FLOAT8_E5M2 = 24,
  TF_FLOAT8_E4M3FN = 25,
  TF_INT4 = 29,
  TF_UINT4 = 30
} TF_DataType;

size_t TF_DataTypeSize(TF_DataType dt);

/* ---- tf_status.h ---- */
typedef enum TF_Code {
  TF_OK = 0,
  TF_CANCELLED = 1,
  TF_UNKNOWN = 2,
  TF_INVALID_ARGUMENT = 3,
  TF_DEADLINE_EXCEEDED = 4,
  TF_NOT_FOUND = 5,
  TF_ALREADY_EXISTS = 6,
  TF_PERMISSION_DENIED = 7,
  TF_UNAUTHENTICATED = 16,
  TF_RESOURCE_EXHAUSTED = 8,
  TF_FAILED_PRECONDITION = 9,
  TF_ABORTED = 10,
  TF_OUT_OF_RANGE = 11,
  TF_UNIMPLEMENTED = 12,
  TF_INTERNAL = 13,
  TF_UNAVAILABLE = 14,
  TF_DATA_LOSS = 15
} TF_Code;

typedef struct TF_Status TF_Status;
TF_Status* TF_NewStatus(void);
void TF_DeleteStatus(TF_Status* s);
TF_Code TF_GetCode(const TF_Status* s);
const char* TF_Message(const TF_Status* s);

/* ---- tf_tensor.h ---- */
typedef struct TF_Tensor TF_Tensor;
TF_Tensor* TF_NewTensor(TF_DataType dtype, const int64_t* dims, int num_dims, void* data,
                        size_t len, void (*deallocator)(void* data, size_t len, void* arg),
                        void* deallocator_arg);
TF_Tensor* TF_AllocateTensor(TF_DataType dtype, const int64_t* dims, int num_dims, size_t len);
void TF_DeleteTensor(TF_Tensor* t);
TF_DataType TF_TensorType(const TF_Tensor* t);
int TF_NumDims(const TF_Tensor* t);
int64_t TF_Dim(const TF_Tensor* t, int dim_index);
size_t TF_TensorByteSize(const TF_Tensor* t);
void* TF_TensorData(const TF_Tensor* t);
int64_t TF_TensorElementCount(const TF_Tensor* t);

/* ---- c_api.h ---- */
const char* TF_Version(void);

typedef struct TF_Buffer {
  const void* data;
  size_t length;
  void (*data_deallocator)(void* data, size_t length);
} TF_Buffer;
TF_Buffer* TF_NewBufferFromString(const void* proto, size_t proto_len);
TF_Buffer* TF_NewBuffer(void);
void TF_DeleteBuffer(TF_Buffer* buffer);

typedef enum TF_AttrType {
  TF_ATTR_STRING = 0,
  TF_ATTR_INT = 1,
  TF_ATTR_FLOAT = 2,
  TF_ATTR_BOOL = 3,
  TF_ATTR_TYPE = 4,
  TF_ATTR_SHAPE = 5,
  TF_ATTR_TENSOR = 6,
  TF_ATTR_PLACEHOLDER = 7,
  TF_ATTR_FUNC = 8
} TF_AttrType;

typedef struct TF_Graph TF_Graph;
typedef struct TF_Operation TF_Operation;
typedef struct TF_Session TF_Session;
typedef struct TF_SessionOptions TF_SessionOptions;
typedef struct TF_DeviceList TF_DeviceList;
typedef struct TF_Output {
  TF_Operation* oper;
  int index;
} TF_Output;

TF_Graph* TF_NewGraph(void);
void TF_DeleteGraph(TF_Graph* graph);
TF_Operation* TF_GraphOperationByName(TF_Graph* graph, const char* oper_name);
TF_SessionOptions* TF_NewSessionOptions(void);
void TF_DeleteSessionOptions(TF_SessionOptions* options);
TF_Session* TF_LoadSessionFromSavedModel(const TF_SessionOptions* session_options,
                                         const TF_Buffer* run_options, const char* export_dir,
                                         const char* const* tags, int tags_len, TF_Graph* graph,
                                         TF_Buffer* meta_graph_def, TF_Status* status);
void TF_DeleteSession(TF_Session* session, TF_Status* status);
void TF_SessionRun(TF_Session* session, const TF_Buffer* run_options, const TF_Output* inputs,
                   TF_Tensor* const* input_values, int ninputs, const TF_Output* outputs,
                   TF_Tensor** output_values, int noutputs, const TF_Operation* const* target_opers,
                   int ntargets, TF_Buffer* run_metadata, TF_Status* status);
void TF_DeleteDeviceList(TF_DeviceList* list);
int TF_DeviceListCount(const TF_DeviceList* list);
const char* TF_DeviceListName(const TF_DeviceList* list, int index, TF_Status* status);
const char* TF_DeviceListType(const TF_DeviceList* list, int index, TF_Status* status);

/* ---- eager/c_api.h ---- */
typedef struct TFE_ContextOptions TFE_ContextOptions;
typedef struct TFE_Context TFE_Context;
typedef struct TFE_TensorHandle TFE_TensorHandle;
typedef struct TFE_Op TFE_Op;

TFE_ContextOptions* TFE_NewContextOptions(void);
void TFE_DeleteContextOptions(TFE_ContextOptions* options);
TFE_Context* TFE_NewContext(const TFE_ContextOptions* opts, TF_Status* status);
void TFE_DeleteContext(TFE_Context* ctx);
TF_DeviceList* TFE_ContextListDevices(TFE_Context* ctx, TF_Status* status);

TFE_TensorHandle* TFE_NewTensorHandle(const TF_Tensor* t, TF_Status* status);
void TFE_DeleteTensorHandle(TFE_TensorHandle* h);
TF_DataType TFE_TensorHandleDataType(TFE_TensorHandle* h);
int TFE_TensorHandleNumDims(TFE_TensorHandle* h, TF_Status* status);
int64_t TFE_TensorHandleDim(TFE_TensorHandle* h, int dim_index, TF_Status* status);
TF_Tensor* TFE_TensorHandleResolve(TFE_TensorHandle* h, TF_Status* status);
TFE_TensorHandle* TFE_TensorHandleCopyToDevice(TFE_TensorHandle* h, TFE_Context* ctx,
                                               const char* device_name, TF_Status* status);

TFE_Op* TFE_NewOp(TFE_Context* ctx, const char* op_or_function_name, TF_Status* status);
void TFE_DeleteOp(TFE_Op* op);
void TFE_OpAddInput(TFE_Op* op, TFE_TensorHandle* input, TF_Status* status);
void TFE_OpSetAttrString(TFE_Op* op, const char* attr_name, const void* value, size_t length);
void TFE_OpSetAttrInt(TFE_Op* op, const char* attr_name, int64_t value);
void TFE_OpSetAttrFloat(TFE_Op* op, const char* attr_name, float value);
void TFE_OpSetAttrBool(TFE_Op* op, const char* attr_name, unsigned char value);
void TFE_OpSetAttrType(TFE_Op* op, const char* attr_name, TF_DataType value);
void TFE_OpSetAttrShape(TFE_Op* op, const char* attr_name, const int64_t* dims, const int num_dims,
                        TF_Status* out_status);
void TFE_OpSetAttrIntList(TFE_Op* op, const char* attr_name, const int64_t* values,
                          int num_values);
void TFE_OpSetAttrFloatList(TFE_Op* op, const char* attr_name, const float* values,
                            int num_values);
void TFE_OpSetAttrBoolList(TFE_Op* op, const char* attr_name, const unsigned char* values,
                           int num_values);
void TFE_Execute(TFE_Op* op, TFE_TensorHandle** retvals, int* num_retvals, TF_Status* status);

/* ---- core/platform/ctstring_internal.h: TF_STRING element layout (24 bytes, little-endian) ----
 * The low two bits of the first byte hold the representation; sizes are stored shifted left by
 * two. These helpers are header-only in TensorFlow too (nothing to link against). */
typedef enum TF_TString_Type {
  TF_TSTR_SMALL = 0x00,
  TF_TSTR_LARGE = 0x01,
  TF_TSTR_OFFSET = 0x02,
  TF_TSTR_VIEW = 0x03,
  TF_TSTR_TYPE_MASK = 0x03
} TF_TString_Type;

typedef struct TF_TString_Large {
  size_t size;
  size_t cap;
  char* ptr;
} TF_TString_Large;
typedef struct TF_TString_Offset {
  uint32_t size;
  uint32_t offset;
  uint32_t count;
} TF_TString_Offset;
typedef struct TF_TString_View {
  size_t size;
  const char* ptr;
} TF_TString_View;
typedef struct TF_TString_Raw {
  uint8_t raw[24];
} TF_TString_Raw;
enum { TF_TString_SmallCapacity = 22 };
typedef struct TF_TString_Small {
  uint8_t size;
  char str[TF_TString_SmallCapacity + 1];
} TF_TString_Small;
typedef struct TF_TString {
  union {
    TF_TString_Small smll;
    TF_TString_Large large;
    TF_TString_Offset offset;
    TF_TString_View view;
    TF_TString_Raw raw;
  } u;
} TF_TString;

static inline TF_TString_Type TF_TString_GetType(const TF_TString* str) {
  return (TF_TString_Type)(str->u.raw.raw[0] & TF_TSTR_TYPE_MASK);
}

static inline void TF_TString_Init(TF_TString* str) { memset(str->u.raw.raw, 0, sizeof(TF_TString_Raw)); }

static inline void TF_TString_Dealloc(TF_TString* str) {
  if (TF_TString_GetType(str) == TF_TSTR_LARGE && str->u.large.ptr != NULL) {
    free(str->u.large.ptr);
  }
  TF_TString_Init(str);
}

static inline size_t TF_TString_GetSize(const TF_TString* str) {
  switch (TF_TString_GetType(str)) {
    case TF_TSTR_SMALL:
      return str->u.smll.size >> 2;
    case TF_TSTR_LARGE:
      return str->u.large.size >> 2;
    case TF_TSTR_OFFSET:
      return str->u.offset.size >> 2;
    case TF_TSTR_VIEW:
      return str->u.view.size >> 2;
    default:
      return 0;
  }
}

static inline const char* TF_TString_GetDataPointer(const TF_TString* str) {
  switch (TF_TString_GetType(str)) {
    case TF_TSTR_SMALL:
      return str->u.smll.str;
    case TF_TSTR_LARGE:
      return str->u.large.ptr;
    case TF_TSTR_OFFSET:
      return (const char*)str + str->u.offset.offset;
    case TF_TSTR_VIEW:
      return str->u.view.ptr;
    default:
      return NULL;
  }
}

/* Replaces the contents with a copy of src[0..size). */
static inline void TF_TString_Copy(TF_TString* str, const char* src, size_t size) {
  TF_TString_Dealloc(str);
  if (size <= TF_TString_SmallCapacity) {
    str->u.smll.size = (uint8_t)(size << 2) | TF_TSTR_SMALL;
    if (size > 0) memcpy(str->u.smll.str, src, size);
    str->u.smll.str[size] = '\0';
    return;
  }
  size_t cap = ((size + 1 + 15) & ~(size_t)15) - 1;
  char* ptr = (char*)malloc(cap + 1);
  memcpy(ptr, src, size);
  ptr[size] = '\0';
  str->u.large.size = (size << 2) | TF_TSTR_LARGE;
  str->u.large.cap = cap;
  str->u.large.ptr = ptr;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SUPSUPD_TF_C_API_H_ */

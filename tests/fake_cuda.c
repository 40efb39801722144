/* A stand-in for the CUDA libraries and the driver (libcuda.so.1), built by tests/test_gpu.py under each
 * library's name, so that dcgan_ms.gpu can be tried against machines this one is not. It answers what
 * the environment says:
 *   FAKE_CUDA_DRIVER   the driver's CUDA version as CUDA writes it (12020: 12.2; default 12020)
 *   FAKE_CUDA_GPUS     the GPUs, "NAME=MAJOR.MINOR" separated by ";" (unset or empty: cuInit says 100,
 *                      no CUDA-capable device)
 *   FAKE_CUDA_RUNTIME  what cudaRuntimeGetVersion says (default 11080; 0: it fails, as without a GPU)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int env_int(const char *name, int fallback) {
  const char *text = getenv(name);
  return text && *text ? atoi(text) : fallback;
}

/* The index-th GPU of FAKE_CUDA_GPUS into name (may be NULL), its capability into major, minor; 0 if none. */
static int gpu(int index, char *name, int size, int *major, int *minor) {
  const char *list = getenv("FAKE_CUDA_GPUS");
  if (!list || !*list) return 0;
  for (int i = 0; i < index; i++) {
    list = strchr(list, ';');
    if (!list) return 0;
    list++;
  }
  const char *equals = strchr(list, '=');
  if (!equals) return 0;
  if (name) snprintf(name, size, "%.*s", (int)(equals - list), list);
  if (major && minor) sscanf(equals + 1, "%d.%d", major, minor);
  return 1;
}

int cudaRuntimeGetVersion(int *version) {
  *version = env_int("FAKE_CUDA_RUNTIME", 11080);
  return *version ? 0 : 35;
}

int cuDriverGetVersion(int *version) {
  *version = env_int("FAKE_CUDA_DRIVER", 12020);
  return 0;
}

int cuInit(unsigned flags) {
  (void)flags;
  return gpu(0, NULL, 0, NULL, NULL) ? 0 : 100;
}

int cuGetErrorString(int error, const char **text) {
  *text = error == 100 ? "no CUDA-capable device is detected" : "unknown error";
  return 0;
}

int cuDeviceGetCount(int *count) {
  *count = 0;
  while (gpu(*count, NULL, 0, NULL, NULL)) ++*count;
  return 0;
}

int cuDeviceGet(int *device, int index) {
  *device = index;
  return 0;
}

int cuDeviceGetAttribute(int *value, int attribute, int device) {
  int major = 0, minor = 0;
  gpu(device, NULL, 0, &major, &minor);
  *value = attribute == 75 ? major : minor; /* 75, 76: compute capability major, minor */
  return 0;
}

int cuDeviceGetName(char *name, int size, int device) {
  gpu(device, name, size, NULL, NULL);
  return 0;
}

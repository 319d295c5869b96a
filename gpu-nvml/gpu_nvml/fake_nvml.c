/*
 * A stand-in for NVIDIA's libnvidia-ml.so.1, for machines without an NVIDIA GPU (CI, laptops).
 *
 * It implements the NVML functions that the official Python bindings (nvidia-ml-py, module pynvml) call
 * for gpu-nvml, with the real signatures and return codes, so the real bindings and the whole client run
 * against it unchanged: put its directory first on LD_LIBRARY_PATH. Built by gpu_nvml/fake_nvml.py:
 *
 *     cc -shared -fPIC -O2 -Wl,-soname,libnvidia-ml.so.1 -o libnvidia-ml.so.1 fake_nvml.c -pthread
 *
 * The GPUs are described by the control file named by FAKE_NVML_CONTROL, one GPU per line:
 *
 *     <uuid> <watts> <base_mj> <t0_ns> <energy 0|1> <instant 0|1> <lost 0|1> <name up to the end of line>
 *
 * A GPU draws <watts>; its energy counter reads base_mj + watts x (now - t0_ns) in mJ, with now on
 * CLOCK_MONOTONIC (the clock of Python's time.monotonic_ns), so it advances in real time without a
 * thread, and a controller changes the power or restarts the counter by rewriting base_mj and t0_ns.
 * energy=0 makes nvmlDeviceGetTotalEnergyConsumption NOT_SUPPORTED (GPUs before Volta), instant=0 the
 * field NVML_FI_DEV_POWER_INSTANT; lost=1 makes every call on the GPU return GPU_IS_LOST (fell off the
 * bus). The file is re-read when it changes (inode, size or mtime; controllers replace it by rename), so
 * a call costs one stat(). The number of GPUs is fixed at nvmlInit, as with the real driver. Without
 * FAKE_NVML_CONTROL, or when the file cannot be read, nvmlInit answers DRIVER_NOT_LOADED.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_UNKNOWN = 999,
};

enum { NVML_VALUE_TYPE_UNSIGNED_INT = 1 };
enum { NVML_FI_DEV_POWER_INSTANT = 186 };

typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    long long sllVal;
    int siVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

#define MAX_GPUS 64
#define UUID_LEN 96
#define NAME_LEN 96

struct fake_gpu {
    unsigned int index;
    char uuid[UUID_LEN];
    char name[NAME_LEN];
    double watts;
    double base_mj;
    long long t0_ns;
    int energy;
    int instant;
    int lost;
};

typedef struct fake_gpu *nvmlDevice_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fake_gpu gpus[MAX_GPUS];
static unsigned int gpu_count;
static int init_count;
static char control_path[4096];
static struct stat control_seen;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Parse the control file into gpus[]; with fixed=1 only the first gpu_count lines are taken. */
static int load_control(int fixed) {
    FILE *file = fopen(control_path, "r");
    if (file == NULL) return -1;
    struct stat seen;
    if (fstat(fileno(file), &seen) != 0) {
        fclose(file);
        return -1;
    }
    char line[512];
    unsigned int n = 0;
    while (fgets(line, sizeof line, file) != NULL && n < MAX_GPUS) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (fixed && n >= gpu_count) break;
        struct fake_gpu gpu;
        memset(&gpu, 0, sizeof gpu);
        int used = 0;
        if (sscanf(line, "%95s %lf %lf %lld %d %d %d %n", gpu.uuid, &gpu.watts, &gpu.base_mj, &gpu.t0_ns, &gpu.energy,
                   &gpu.instant, &gpu.lost, &used) < 7)
            continue;
        size_t len = strcspn(line + used, "\r\n");
        if (len >= NAME_LEN) len = NAME_LEN - 1;
        memcpy(gpu.name, line + used, len);
        gpu.index = n;
        gpus[n++] = gpu;
    }
    fclose(file);
    if (!fixed) gpu_count = n;
    control_seen = seen;
    return 0;
}

/* Re-read the control file if it was replaced or changed since it was last read. */
static void refresh(void) {
    struct stat now;
    if (stat(control_path, &now) != 0) return; /* keep the last state while a controller renames */
    if (now.st_ino != control_seen.st_ino || now.st_size != control_seen.st_size ||
        now.st_mtim.tv_sec != control_seen.st_mtim.tv_sec || now.st_mtim.tv_nsec != control_seen.st_mtim.tv_nsec)
        load_control(1);
}

/* Common entry of every device call: initialised, a known handle, the file fresh, the GPU not lost. */
static nvmlReturn_t enter(nvmlDevice_t device) {
    pthread_mutex_lock(&lock);
    if (init_count == 0) return NVML_ERROR_UNINITIALIZED;
    if (device == NULL || device < gpus || device >= gpus + gpu_count) return NVML_ERROR_INVALID_ARGUMENT;
    refresh();
    if (device->lost) return NVML_ERROR_GPU_IS_LOST;
    return NVML_SUCCESS;
}

static nvmlReturn_t leave(nvmlReturn_t status) {
    pthread_mutex_unlock(&lock);
    return status;
}

static nvmlReturn_t copy_string(const char *text, char *out, unsigned int size) {
    if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) + 1 > size) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, text);
    return NVML_SUCCESS;
}

static unsigned int power_mw(const struct fake_gpu *gpu) {
    return gpu->watts > 0 ? (unsigned int)(gpu->watts * 1000.0 + 0.5) : 0;
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    pthread_mutex_lock(&lock);
    if (init_count == 0) {
        const char *path = getenv("FAKE_NVML_CONTROL");
        if (path == NULL || strlen(path) >= sizeof control_path) return leave(NVML_ERROR_DRIVER_NOT_LOADED);
        strcpy(control_path, path);
        if (load_control(0) != 0) return leave(NVML_ERROR_DRIVER_NOT_LOADED);
    }
    init_count++;
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&lock);
    if (init_count == 0) return leave(NVML_ERROR_UNINITIALIZED);
    init_count--;
    return leave(NVML_SUCCESS);
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    pthread_mutex_lock(&lock);
    if (init_count == 0) return leave(NVML_ERROR_UNINITIALIZED);
    return leave(copy_string("fake-nvml", version, length));
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    pthread_mutex_lock(&lock);
    if (init_count == 0) return leave(NVML_ERROR_UNINITIALIZED);
    if (count == NULL) return leave(NVML_ERROR_INVALID_ARGUMENT);
    *count = gpu_count;
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    pthread_mutex_lock(&lock);
    if (init_count == 0) return leave(NVML_ERROR_UNINITIALIZED);
    if (device == NULL || index >= gpu_count) return leave(NVML_ERROR_INVALID_ARGUMENT);
    *device = &gpus[index];
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    pthread_mutex_lock(&lock);
    if (init_count == 0) return leave(NVML_ERROR_UNINITIALIZED);
    if (uuid == NULL || device == NULL) return leave(NVML_ERROR_INVALID_ARGUMENT);
    for (unsigned int i = 0; i < gpu_count; i++) {
        if (strcmp(gpus[i].uuid, uuid) == 0) {
            *device = &gpus[i];
            return leave(NVML_SUCCESS);
        }
    }
    return leave(NVML_ERROR_NOT_FOUND);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    nvmlReturn_t status = enter(device);
    if (status != NVML_SUCCESS) return leave(status);
    return leave(copy_string(device->uuid, uuid, length));
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    nvmlReturn_t status = enter(device);
    if (status != NVML_SUCCESS) return leave(status);
    return leave(copy_string(device->name, name, length));
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    nvmlReturn_t status = enter(device);
    if (status != NVML_SUCCESS) return leave(status);
    if (index == NULL) return leave(NVML_ERROR_INVALID_ARGUMENT);
    *index = device->index;
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy) {
    nvmlReturn_t status = enter(device);
    if (status != NVML_SUCCESS) return leave(status);
    if (energy == NULL) return leave(NVML_ERROR_INVALID_ARGUMENT);
    if (!device->energy) return leave(NVML_ERROR_NOT_SUPPORTED);
    long long elapsed = now_ns() - device->t0_ns;
    double mj = device->base_mj + device->watts * (double)(elapsed > 0 ? elapsed : 0) / 1e6;
    *energy = mj > 0 ? (unsigned long long)mj : 0;
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    nvmlReturn_t status = enter(device);
    if (status != NVML_SUCCESS) return leave(status);
    if (power == NULL) return leave(NVML_ERROR_INVALID_ARGUMENT);
    *power = power_mw(device);
    return leave(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int count, nvmlFieldValue_t *values) {
    nvmlReturn_t status = enter(device);
    if (status != NVML_SUCCESS) return leave(status);
    if (values == NULL || count < 0) return leave(NVML_ERROR_INVALID_ARGUMENT);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    for (int i = 0; i < count; i++) {
        nvmlFieldValue_t *field = &values[i];
        field->timestamp = (long long)wall.tv_sec * 1000000LL + wall.tv_nsec / 1000;
        field->latencyUsec = 0;
        if (field->fieldId == NVML_FI_DEV_POWER_INSTANT && device->instant) {
            field->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
            field->value.uiVal = power_mw(device);
            field->nvmlReturn = NVML_SUCCESS;
        } else {
            field->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        }
    }
    return leave(NVML_SUCCESS);
}

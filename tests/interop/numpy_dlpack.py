#!/usr/bin/env python3
"""tests/interop/numpy_dlpack.py - Ember and NumPy share tensors through DLPack, both ways.

Usage: numpy_dlpack.py PATH/TO/libember.so

Loads libember with ctypes, lends an Ember tensor to numpy.from_dlpack (wrapped in a
"dltensor" PyCapsule, as Python's __dlpack__ protocol hands it over) and views a NumPy
array's __dlpack__() capsule as an Ember tensor, checking after each write that both sides see
the same memory and that each deleter runs exactly once. Exits 77 (skipped) without NumPy or
with a NumPy older than 1.22 (no from_dlpack).
"""
import ctypes
import sys

SKIP = 77

try:
    import numpy as np
except ImportError:
    print("SKIP: NumPy is not installed (Debian: python3-numpy)")
    sys.exit(SKIP)
if not hasattr(np, "from_dlpack"):
    print(f"SKIP: NumPy {np.__version__} has no from_dlpack (needs 1.22 or later)")
    sys.exit(SKIP)

c_void_p, c_int, c_int64, c_double = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_double


# DLPack's C structs (dlpack/dlpack.h), as far as this test reads them.
class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", c_int), ("device_id", c_int)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", c_void_p), ("device", DLDevice), ("ndim", c_int), ("dtype", DLDataType),
                ("shape", ctypes.POINTER(c_int64)), ("strides", ctypes.POINTER(c_int64)),
                ("byte_offset", ctypes.c_uint64)]


class DLManagedTensor(ctypes.Structure):
    pass


DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))
DLManagedTensor._fields_ = [("dl_tensor", DLTensor), ("manager_ctx", c_void_p),
                            ("deleter", DELETER)]


class EmDevice(ctypes.Structure):
    _fields_ = [("backend", ctypes.c_int32), ("index", ctypes.c_int32)]


class EmOpts(ctypes.Structure):
    _fields_ = [("dtype", c_int), ("device", EmDevice), ("requires_grad", ctypes.c_bool)]


# ember/types.h's em_dtype values
EM_F32, EM_F64, EM_F16, EM_BF16, EM_I64, EM_I32, EM_U8, EM_BOOL = range(1, 9)
NUMPY_DTYPES = {EM_F32: np.float32, EM_F64: np.float64, EM_F16: np.float16,
                EM_I64: np.int64, EM_I32: np.int32, EM_U8: np.uint8}

# PyDLL keeps the GIL held during calls: em_release may run NumPy's deleter, which touches
# Python objects.
em = ctypes.PyDLL(sys.argv[1])
em.em_init.argtypes = [ctypes.c_char_p]
em.em_last_error.restype = ctypes.c_char_p
em.em_tensor_from_data.restype = c_void_p
em.em_tensor_from_data.argtypes = [c_void_p, c_int, c_int, ctypes.POINTER(c_int64), c_void_p]
em.em_to_dlpack.restype = c_void_p
em.em_to_dlpack.argtypes = [c_void_p]
em.em_from_dlpack.restype = c_void_p
em.em_from_dlpack.argtypes = [c_void_p]
em.em_release.argtypes = [c_void_p]
em.em_data_ptr.restype = c_void_p
em.em_data_ptr.argtypes = [c_void_p]
em.em_copy_to_host.argtypes = [c_void_p, c_void_p, ctypes.c_size_t]
em.em_fill_.restype = c_void_p
em.em_fill_.argtypes = [c_void_p, c_double]
em.em_dtype_of.argtypes = [c_void_p]
em.em_device_parse.restype = EmDevice
em.em_device_parse.argtypes = [ctypes.c_char_p]
em.em_memory_allocated.restype = ctypes.c_size_t
em.em_memory_allocated.argtypes = [EmDevice]

py = ctypes.pythonapi
CAPSULE_DESTRUCTOR = ctypes.CFUNCTYPE(None, c_void_p)
py.PyCapsule_New.restype = ctypes.py_object
py.PyCapsule_New.argtypes = [c_void_p, ctypes.c_char_p, CAPSULE_DESTRUCTOR]
py.PyCapsule_IsValid.restype = c_int
py.PyCapsule_IsValid.argtypes = [ctypes.py_object, ctypes.c_char_p]
py.PyCapsule_GetPointer.restype = c_void_p
py.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
py.PyCapsule_SetName.restype = c_int
py.PyCapsule_SetName.argtypes = [ctypes.py_object, ctypes.c_char_p]

# The same two functions taking the capsule as a raw address, for the capsule's destructor.
capsule_is_valid_raw = ctypes.PYFUNCTYPE(c_int, c_void_p, ctypes.c_char_p)(
    ("PyCapsule_IsValid", py))
capsule_get_pointer_raw = ctypes.PYFUNCTYPE(c_void_p, c_void_p, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", py))

DLTENSOR = b"dltensor"
USED_DLTENSOR = b"used_dltensor"   # module-level: PyCapsule_SetName keeps the pointer

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def ember_error():
    return em.em_last_error().decode()


# ---- Ember -> NumPy ------------------------------------------------------------------------

@CAPSULE_DESTRUCTOR
def capsule_destructor(capsule_ptr):
    # The protocol: a capsule still named "dltensor" was never consumed, so its deleter runs
    # here; a consumer renames it "used_dltensor" and calls the deleter itself.
    # The capsule is being deallocated: look at it through its raw address only.
    if capsule_is_valid_raw(capsule_ptr, DLTENSOR):
        m = capsule_get_pointer_raw(capsule_ptr, DLTENSOR)
        m = ctypes.cast(m, ctypes.POINTER(DLManagedTensor))
        m.contents.deleter(m)


class EmberTensor:
    """What numpy.from_dlpack asks of an array: __dlpack__ and __dlpack_device__."""

    def __init__(self, t):
        self.t = t

    def __dlpack__(self, stream=None):
        m = em.em_to_dlpack(self.t)
        if not m:
            raise BufferError(ember_error())
        return py.PyCapsule_New(m, DLTENSOR, capsule_destructor)

    def __dlpack_device__(self):
        return (1, 0)   # kDLCPU


def ember_tensor(values, em_dtype, shape):
    src = np.ascontiguousarray(values, dtype=np.float64)
    dims = (c_int64 * len(shape))(*shape)
    opts = EmOpts(dtype=em_dtype)   # the CPU: em_init pins nothing, EMBER_BACKEND may
    opts.device = em.em_device_parse(b"cpu")
    t = em.em_tensor_from_data(src.ctypes.data, EM_F64, len(shape), dims, ctypes.byref(opts))
    if not t:
        sys.exit("em_tensor_from_data: " + ember_error())
    return t


def ember_values(t, dtype, count):
    out = np.empty(count, dtype=dtype)
    rc = em.em_copy_to_host(t, out.ctypes.data, out.nbytes)
    if rc != 0:
        sys.exit("em_copy_to_host: " + ember_error())
    return out


def ember_to_numpy(em_dtype, np_dtype):
    name = np.dtype(np_dtype).name
    cpu = em.em_device_parse(b"cpu")
    before = em.em_memory_allocated(cpu)
    t = ember_tensor(np.arange(6), em_dtype, (2, 3))
    a = np.from_dlpack(EmberTensor(t))
    check(a.dtype == np_dtype and a.shape == (2, 3), f"{name}: NumPy sees a 2x3 {a.dtype} array")
    check(a.ctypes.data == em.em_data_ptr(t), f"{name}: NumPy's array is Ember's memory")
    check((a == np.arange(6).reshape(2, 3)).all(), f"{name}: NumPy reads Ember's values")
    # NumPy before 2 marks an array from DLPack read-only (DLPack 0.x cannot say whether the
    # producer allows writes); then write through a NumPy alias of the same address.
    w = a if a.flags.writeable else np.frombuffer(
        (ctypes.c_char * a.nbytes).from_address(a.ctypes.data), dtype=np_dtype).reshape(2, 3)
    w[1, 2] = 42
    check(a[1, 2] == 42 and ember_values(t, np_dtype, 6)[5] == 42,
          f"{name}: Ember sees NumPy's write" + ("" if w is a else " (through an alias)"))
    del w
    r = em.em_fill_(t, 7)
    em.em_release(r)
    check((a == 7).all(), f"{name}: NumPy sees Ember's write")
    em.em_release(t)
    check((a == 7).all(), f"{name}: the array stays valid after Ember releases the tensor")
    check(em.em_memory_allocated(cpu) > before, f"{name}: NumPy's view holds the storage")
    del a
    check(em.em_memory_allocated(cpu) == before,
          f"{name}: dropping NumPy's array ran the deleter, freeing the storage")


# ---- NumPy -> Ember ------------------------------------------------------------------------

def numpy_to_ember(em_dtype, np_dtype):
    name = np.dtype(np_dtype).name
    base = np.arange(12, dtype=np_dtype).reshape(3, 4)
    a = base[:, 1:3]   # strided: NumPy's strides and offset must be honoured
    refs = sys.getrefcount(a)
    capsule = a.__dlpack__()
    m = py.PyCapsule_GetPointer(capsule, DLTENSOR)
    t = em.em_from_dlpack(m)
    check(bool(t), f"{name}: em_from_dlpack accepts NumPy's capsule ({ember_error() if not t else 'ok'})")
    if not t:
        return
    py.PyCapsule_SetName(capsule, USED_DLTENSOR)   # consumed: Ember calls the deleter now
    del capsule
    check(em.em_dtype_of(t) == em_dtype, f"{name}: the Ember tensor has the matching dtype")
    check((ember_values(t, np_dtype, 6) == [1, 2, 5, 6, 9, 10]).all(),
          f"{name}: Ember reads NumPy's strided view")
    r = em.em_fill_(t, 3)
    em.em_release(r)
    check((base == np.array([[0, 3, 3, 3], [4, 3, 3, 7], [8, 3, 3, 11]])).all(),
          f"{name}: NumPy sees Ember's write, inside the view only")
    a[2, 1] = 99
    check(ember_values(t, np_dtype, 6)[5] == 99, f"{name}: Ember sees NumPy's write")
    check(sys.getrefcount(a) > refs, f"{name}: Ember's tensor holds NumPy's array")
    em.em_release(t)
    check(sys.getrefcount(a) == refs,
          f"{name}: releasing the tensor ran NumPy's deleter exactly once")


def main():
    if em.em_init(None) != 0:
        sys.exit("em_init: " + ember_error())
    print(f"NumPy {np.__version__}")
    for em_dtype, np_dtype in NUMPY_DTYPES.items():
        ember_to_numpy(em_dtype, np_dtype)
        numpy_to_ember(em_dtype, np_dtype)
    em.em_shutdown()
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


main()

export { initNative, nativeSummary, describeNative, nativeEnabled, setNativeEnabled, setNativeThreads, parseNativeMode, nativeThreads, threadsPerWorker, NATIVE_MODES, NATIVE_ENV, NATIVE_THREADS_ENV, INSTALL_HINT, type NativeMode, type NativeSummary } from './provider.js';
export { registerNativeKernels } from './kernels.js';
export { gramOf, productOf, nativeGramAvailable, hostOpenBlas } from './gram.js';
export { initCublas, loadedCublas, parseCublasMode, CUBLAS_ENV, type Cublas, type CublasMode } from './cublas.js';
export { cudaCandidates, pythonSitePackages, CUBLAS_LIB_ENV, CUDART_LIB_ENV } from './cuda-paths.js';
export { convPrimitiveStats } from './conv-kernels.js';
export { batchNormPrimitiveStats, inferenceBatchNormStats, nativeBatchNormSupports, BN_TRAINING_KERNEL, BN_TRAINING_GRAD_KERNEL } from './batchnorm-kernels.js';
export { OPENBLAS_ENV, DNNL_ENV } from './library-paths.js';
export { nativeReluGradSupports, reluPrimitiveStats, RELU_GRAD_KERNEL } from './relu-kernels.js';

package nccl

// scalePTX is the one kernel the backend needs of its own: x[i] *= alpha
// over n float32 values, for Avg on NCCL older than 2.10 (no ncclAvg: sum,
// then scale by 1/size). Hand-written PTX, loaded with cuModuleLoadData and
// compiled by the driver for whatever GPU is present; PTX ISA 6.0 and
// target sm_50 so that any driver since CUDA 9 accepts it. A grid-stride
// loop over a 64-bit count covers buffers past 2^32 elements with a
// bounded grid. Every parameter is 8 bytes wide because cu's Launch
// copies each one as a uint64. Untagged so that plan_test.go can check it
// with ptxas where the toolkit is installed (make check-cuda).
const scalePTX = `
.version 6.0
.target sm_50
.address_size 64

.visible .entry earl_scale_f32(
	.param .u64 p_x,
	.param .u64 p_n,
	.param .f64 p_alpha
)
{
	.reg .pred	%p<2>;
	.reg .b32	%r<5>;
	.reg .f32	%f<4>;
	.reg .f64	%fd<2>;
	.reg .b64	%rd<9>;

	ld.param.u64	%rd1, [p_x];
	ld.param.u64	%rd2, [p_n];
	ld.param.f64	%fd1, [p_alpha];
	cvt.rn.f32.f64	%f1, %fd1;
	cvta.to.global.u64	%rd3, %rd1;
	mov.u32	%r1, %ctaid.x;
	mov.u32	%r2, %ntid.x;
	mov.u32	%r3, %tid.x;
	mov.u32	%r4, %nctaid.x;
	mul.wide.u32	%rd4, %r1, %r2;
	cvt.u64.u32	%rd5, %r3;
	add.s64	%rd4, %rd4, %rd5;	// i = blockIdx.x * blockDim.x + threadIdx.x
	mul.wide.u32	%rd6, %r4, %r2;	// stride = gridDim.x * blockDim.x
LOOP:
	setp.ge.u64	%p1, %rd4, %rd2;
	@%p1 bra	DONE;
	shl.b64	%rd7, %rd4, 2;
	add.s64	%rd8, %rd3, %rd7;
	ld.global.f32	%f2, [%rd8];
	mul.rn.f32	%f3, %f2, %f1;
	st.global.f32	[%rd8], %f3;
	add.s64	%rd4, %rd4, %rd6;
	bra.uni	LOOP;
DONE:
	ret;
}
`

// scaleKernel is the entry point's name in scalePTX.
const scaleKernel = "earl_scale_f32"

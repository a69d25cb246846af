package privsep

import "golang.org/x/sys/unix"

const (
	auditArch = unix.AUDIT_ARCH_X86_64
	// x32Bit marks a call of the x32 ABI, which shares amd64's arch value.
	x32Bit = 0x40000000
)

// archDeniedCalls are the calls only amd64 has.
func archDeniedCalls() []uint32 { return []uint32{unix.SYS_FORK, unix.SYS_VFORK} }

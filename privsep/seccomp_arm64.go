package privsep

import "golang.org/x/sys/unix"

const (
	auditArch = unix.AUDIT_ARCH_AARCH64
	// x32Bit is above every call number: arm64 has no second ABI that
	// shares its arch value.
	x32Bit = 0xffffffff
)

// archDeniedCalls: arm64 has no fork or vfork, clone covers both.
func archDeniedCalls() []uint32 { return nil }

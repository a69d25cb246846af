package quietio

import "golang.org/x/sys/unix"

// sysFstatat is fstatat(2)'s number; amd64 calls it newfstatat.
const sysFstatat = unix.SYS_NEWFSTATAT

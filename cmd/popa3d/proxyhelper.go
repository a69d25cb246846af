package main

import (
	"fmt"
	"io"
	"os"

	"github.com/popa3d/popa3d/proxy"
)

// proxyHelperRole is the first argument that makes the program the PROXY
// header helper of a privilege-separated -D daemon (proxy.Helper): like
// preauthRole, not a flag a person uses.
const proxyHelperRole = "--proxy-helper"

// runProxyHelper is the PROXY helper: it reads the configuration and
// connects to syslog as root, enters the pre-auth jail (chroot, preauth_user,
// no new process), and only then reads PROXY headers from the connections
// the daemon hands it (proxy.ServeHelper).
func runProxyHelper(args []string, stderr io.Writer) int {
	fs := newFlagSet(args[0], stderr)
	cfgPath := fs.String("c", "", "")
	toStderr := fs.Bool("e", false, "")
	if err := fs.Parse(args[2:]); err != nil || fs.NArg() > 0 || os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "popa3d: %s is started only by popa3d -D itself, as root\n", proxyHelperRole)
		return 1
	}
	cfg, ok := configFor(*cfgPath, *toStderr, stderr)
	if !ok {
		return 1
	}
	log := newLogger(cfg, stderr, false, os.Getpid())
	ch, err := proxy.HelperChannel()
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	j, err := jail(cfg, false)
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	if err := j.Enter(); err != nil {
		log.Error(fmt.Sprintf("proxy helper: %v", err))
		return 1
	}
	if err := proxy.ServeHelper(ch, log); err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

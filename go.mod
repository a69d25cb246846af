module github.com/popa3d/popa3d

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/GehirnInc/crypt v0.0.0-20230320061759-8cc1b52080c5
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/pires/go-proxyproto v0.15.0
	golang.org/x/crypto v0.59.0
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
)

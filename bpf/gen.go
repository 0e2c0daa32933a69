// Package bpf holds the C sources of sockdrain's BPF programs. Running
// go generate here compiles them with bpf2go into the packages that load
// them (little-endian only: amd64 and arm64). The outputs are
// committed; regenerating must leave git diff empty.
package bpf

//go:generate go tool bpf2go -go-package reuseport -output-dir ../sockdrain/gate/reuseport -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror" reuseport reuseport.c
//go:generate go tool bpf2go -go-package sklookup -output-dir ../sockdrain/gate/sklookup -tags linux -target bpfel -type gate_config -cflags "-O2 -g -Wall -Werror" sklookup sklookup.c
//go:generate go tool bpf2go -go-package sockfd -output-dir ../internal/sockfd -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror" owners owners.c
//go:generate go tool bpf2go -go-package arrivals -output-dir ../internal/arrivals -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror" arrivals arrivals.c

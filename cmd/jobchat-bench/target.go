package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// parseTarget checks the server URL and refuses anything but loopback unless
// allowRemote is set: a load generator pointed at a shared host by a typo is
// an outage, so remote targets must be asked for explicitly.
func parseTarget(ctx context.Context, flagName, raw string, allowRemote bool, resolver *net.Resolver) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-%s %q: %w", flagName, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("-%s %q: want an http:// or https:// URL", flagName, raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("-%s %q: no host", flagName, raw)
	}
	if allowRemote {
		return u, nil
	}
	ok, err := isLoopbackHost(ctx, host, resolver)
	if err != nil {
		return nil, fmt.Errorf("-%s %q: %w (pass -allow-remote to target it anyway)", flagName, raw, err)
	}
	if !ok {
		return nil, fmt.Errorf("-%s %q is not a loopback address; pass -allow-remote to load a remote server", flagName, raw)
	}
	return u, nil
}

// isLoopbackHost reports whether every address host stands for is loopback.
// Names other than localhost are resolved, and one non-loopback address is
// enough to refuse: the dialer might pick it.
func isLoopbackHost(ctx context.Context, host string, resolver *net.Resolver) (bool, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback(), nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		// RFC 6761: these names are loopback by definition, whatever DNS says.
		return true, nil
	}
	if resolver == nil {
		return false, fmt.Errorf("cannot tell whether %q is loopback without resolving it", host)
	}
	addrs, err := resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return false, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return false, fmt.Errorf("resolve %s: no addresses", host)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return false, nil
		}
	}
	return true, nil
}

// sourceIPs picks the local addresses client sockets are spread over. Each
// source address has its own ~28k ephemeral ports towards one server port,
// and sockets of earlier runs linger in TIME_WAIT, so a large run uses several
// 127.0.0.x addresses (all of 127/8 is on lo). Nil means "let the kernel
// choose", which is right for small runs and for non-IPv4-loopback targets.
func sourceIPs(target string, sockets, perIP, want int) []net.IP {
	ip := net.ParseIP(target)
	if target == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return nil
	}
	n := want
	if n <= 0 {
		if perIP <= 0 || sockets <= perIP {
			return nil
		}
		n = (sockets + perIP - 1) / perIP
	}
	n = min(n, 250)
	out := make([]net.IP, n)
	for i := range out {
		out[i] = net.IPv4(127, 0, 0, byte(1+i))
	}
	return out
}

// raiseNofile lifts the soft limit on open files to the hard limit: every
// socket is a descriptor, and the default soft limit (1024) would cap a run
// far below what the machine allows.
func raiseNofile() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, 0, fmt.Errorf("raise RLIMIT_NOFILE to %d: %w", lim.Max, err)
		}
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	return lim.Cur, lim.Max, nil
}

package collective

import (
	"fmt"
	"net"
	"strings"
)

// bindIP picks the address a rank listens on and advertises to its
// neighbours: Options.Interface if set (an interface name such as eth0 or
// ib0, or an IP address), otherwise the local address the kernel would
// use to reach MASTER_ADDR — on a cluster, the interface on the masters'
// network; for a local job, the loopback address.
func bindIP(iface, masterAddr string) (net.IP, error) {
	if iface != "" {
		if ip := net.ParseIP(iface); ip != nil {
			return ip, nil
		}
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w (have: %s)", iface, err, interfaceNames())
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", iface, err)
		}
		var v6 net.IP
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			if ip4 := ipn.IP.To4(); ip4 != nil {
				return ip4, nil
			}
			if v6 == nil {
				v6 = ipn.IP
			}
		}
		if v6 != nil {
			return v6, nil
		}
		return nil, fmt.Errorf("interface %q has no usable IP address", iface)
	}
	ip, err := lookupMaster(masterAddr)
	if err != nil {
		return nil, err
	}
	if ip.IsLoopback() {
		return ip, nil
	}
	// A UDP "connection" sends nothing; it only asks the kernel for the
	// route's source address.
	c, err := net.Dial("udp", net.JoinHostPort(ip.String(), "9"))
	if err != nil {
		return nil, fmt.Errorf("no route to MASTER_ADDR %q (%s): %w; set Options.Interface", masterAddr, ip, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP, nil
}

// storeListenAddr is where rank 0's store listens: the loopback address
// when the job is local, all interfaces otherwise — MASTER_ADDR is the
// name the other nodes use, and on rank 0's own node it may resolve to
// another address (Debian maps the host name to 127.0.1.1). The token,
// not the bind address, keeps strangers out.
func storeListenAddr(masterAddr string, port int) string {
	if ip, err := lookupMaster(masterAddr); err == nil && ip.IsLoopback() {
		return net.JoinHostPort(ip.String(), fmt.Sprint(port))
	}
	return fmt.Sprintf(":%d", port)
}

// lookupMaster resolves MASTER_ADDR, preferring IPv4 (localhost resolves
// to both ::1 and 127.0.0.1).
func lookupMaster(masterAddr string) (net.IP, error) {
	ips, err := net.LookupIP(masterAddr)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("resolving MASTER_ADDR %q: %v", masterAddr, err)
	}
	for _, ip := range ips {
		if ip4 := ip.To4(); ip4 != nil {
			return ip4, nil
		}
	}
	return ips[0], nil
}

func interfaceNames() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "?"
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	return strings.Join(names, ", ")
}

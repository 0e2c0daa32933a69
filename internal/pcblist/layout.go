package pcblist

// The export structures of net.inet.tcp.pcblist, as laid out on LP64
// little-endian FreeBSD (amd64) from 12.0 to 15. Every offset below is
// derived from the C declarations, named field by field, so that a change
// can be checked against the headers:
//
//	sys/netinet/in_pcb.h    struct xinpgen, struct xinpcb, struct in_conninfo
//	sys/sys/socketvar.h     struct xsocket, struct xsockbuf
//	sys/netinet/tcp_var.h   struct xtcpcb
//	sys/netinet/tcp_fsm.h   TCPS_*
//
// ksize_t and kvaddr_t are 64 bits on every FreeBSD architecture.

// struct xinpgen: xig_len (ksize_t) @0, xig_count (u_int) @8,
// _xig_spare32 @12, xig_gen @16, xig_sogen @24, _xig_spare64[4] @32.
const (
	xinpgenLen = 64
	xigCount   = 8
	xigGen     = 16
)

// struct xsocket (relative to its start):
//
//	xso_len ksize_t @0, xso_so kvaddr_t @8, so_pcb @16, so_oobmark @24,
//	so_spare64[8] (15: so_splice_so + so_spare64[7]) @32..96,
//	xso_protocol @96, xso_family @100, so_qlen @104, so_incqlen @108,
//	so_qlimit @112, so_pgid @116, so_uid @120, so_fibnum @124,
//	so_spare32[7] @128..156, so_type @156, so_options @158, so_linger @160,
//	so_state @162, so_timeo @164, so_error @166,
//	so_rcv struct xsockbuf @168 (36 bytes: sb_cc @0 ... sb_flags int16 @32,
//	padded to 4), so_snd @204. sizeof = 240.
const (
	xsocketLen = 240
	xsoSo      = 8
	xsoQLen    = 104
	xsoIncQLen = 108
	xsoQLimit  = 112
	xsoState   = 162
	xsoRcvCC   = 168 // so_rcv.sb_cc
	xsoSndCC   = 204 // so_snd.sb_cc
)

// struct xinpcb (relative to its start):
//
//	xi_len ksize_t @0, xi_socket struct xsocket @8..248,
//	inp_inc struct in_conninfo @248 (44 bytes):
//	  inc_flags @0, inc_len @1, inc_fibnum @2, inc_ie struct in_endpoints @4:
//	    ie_fport @0, ie_lport @2, ie_dependfaddr (16) @4, ie_dependladdr (16)
//	    @20, ie6_zoneid @36;
//	  an IPv4 address is the last 4 bytes of its 16 (ia46_addr4 / id4_addr).
//	padding to 8 @292, inp_gencnt @296, inp_ppcb (15: inp_spare64[0]) @304,
//	inp_spare64[4] @312, inp_flow @344, inp_flowid @348, inp_flowtype @352,
//	inp_flags @356, inp_flags2 @360, inp_rss_listen_bucket/inp_unused @364,
//	in6p_cksum @368, inp_spare32[4] @372, in6p_hops @388, inp_ip_tos @390,
//	pad8 @391, inp_vflag @392, inp_ip_ttl @393, inp_ip_p @394,
//	inp_ip_minttl @395, inp_spare8[4] @396. sizeof = 400.
const (
	xinpcbLen   = 400
	xiSocket    = 8
	xiFPort     = 248 + 4 + 0
	xiLPort     = 248 + 4 + 2
	xiFAddr     = 248 + 4 + 4
	xiLAddr     = 248 + 4 + 20
	xiInpFlags  = 356
	xiInpVFlag  = 392
	inAddr4Skip = 12 // ia46_pad32[3] before the IPv4 address
)

// struct xtcpcb: xt_len ksize_t @0, xt_inp struct xinpcb @8..408,
// xt_stack[TCP_FUNCTION_NAME_LEN_MAX=32] @408, xt_logid[TCP_LOG_ID_LEN=64]
// @440, then 13.0+: xt_cc[TCP_CA_NAME_MAX=16] @504 and spare64[6] @520,
// 12.x: spare64[8] @504; both reach t_state (int32) @568. The tail (t_flags
// ... spare32[]) brings sizeof to 744 in every release from 12.0 to 15.
const (
	xtcpcbLen = 744
	xtInp     = 8
	xtState   = 568
)

// Values of the fields read.
const (
	inpIPv4       = 0x1    // INP_IPV4 in inp_vflag
	inpIPv6       = 0x2    // INP_IPV6 in inp_vflag
	in6pV6Only    = 0x8000 // IN6P_IPV6_V6ONLY in inp_flags
	sqIncomplete  = 0x0800 // SQ_INCOMP, or'ed into xsocket.so_state
	sqComplete    = 0x1000 // SQ_COMP, or'ed into xsocket.so_state
	ssConnecting  = 0x0004 // SS_ISCONNECTING
	maxKnownState = TimeWait
)

// Offsets of the fields read, inside one xtcpcb record.
const (
	offXiLen     = xtInp
	offXsoLen    = xtInp + xiSocket
	offSo        = xtInp + xiSocket + xsoSo      // 24
	offQLen      = xtInp + xiSocket + xsoQLen    // 120
	offIncQLen   = xtInp + xiSocket + xsoIncQLen // 124
	offQLimit    = xtInp + xiSocket + xsoQLimit  // 128
	offSoState   = xtInp + xiSocket + xsoState   // 178
	offRcvCC     = xtInp + xiSocket + xsoRcvCC   // 184
	offSndCC     = xtInp + xiSocket + xsoSndCC   // 220
	offFPort     = xtInp + xiFPort               // 260
	offLPort     = xtInp + xiLPort               // 262
	offFAddr     = xtInp + xiFAddr               // 264
	offLAddr     = xtInp + xiLAddr               // 280
	offInpFlags  = xtInp + xiInpFlags            // 364
	offInpVFlag  = xtInp + xiInpVFlag            // 400
	offTCPState  = xtState                       // 568
	inAddrLength = 16
)

// Layout names the record sizes one family of kernels exports.
type Layout struct {
	Name    string
	XInpGen int // sizeof(struct xinpgen)
	XTCPCB  int // sizeof(struct xtcpcb)
	XInPCB  int // sizeof(struct xinpcb)
	XSocket int // sizeof(struct xsocket)
}

// Known are the layouts Parse understands.
var Known = []Layout{{
	Name:    "FreeBSD 12.0-15 LP64",
	XInpGen: xinpgenLen,
	XTCPCB:  xtcpcbLen,
	XInPCB:  xinpcbLen,
	XSocket: xsocketLen,
}}

package gate

// The gates' names, as --backend, probe, status, pins and the README say
// them. They are written out here and nowhere else.
const (
	Reuseport = "reuseport"
	SKLookup  = "sklookup"
	NFTables  = "nftables"
	PF        = "pf"
	IPFW      = "ipfw"
	Shutdown  = "shutdown"
)

// Warner is a gate with something the user must know before relying on
// it, such as a gate that could not be tied to its listener.
type Warner interface {
	Warnings() ([]string, error)
}

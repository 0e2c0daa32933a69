package control

// DefaultDir is where `sockdrain run` makes its control sockets: under
// /run, as the drains' locks are.
const DefaultDir = "/run/sockdrain"

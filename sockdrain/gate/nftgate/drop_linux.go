package nftgate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ackTimeout bounds the wait for the kernel's answers to one batch.
const ackTimeout = 5 * time.Second

// dropTable deletes rules and then our chains and table, in one batch,
// with NLM_F_NONREC on the chains and table: the kernel refuses (EBUSY) to
// delete any of them while it holds anything else, such as a rule another
// process added since we looked, and then aborts the whole batch. The
// google/nftables client can't set that flag, so this speaks netlink
// itself, on its own socket in the gate's namespace. st says which rules
// and chains there are.
func dropTable(conn *netlink.Conn, st state) error {
	var msgs []netlink.Message
	for _, r := range st.ours {
		msgs = append(msgs, delRuleMsg(ChainName, r.Handle))
	}
	msgs = append(msgs, delChainMsg(ChainName))
	if st.tiedChain {
		for _, r := range st.fixed {
			msgs = append(msgs, delRuleMsg(TiedChainName, r.Handle))
		}
		msgs = append(msgs, delChainMsg(TiedChainName))
	}
	msgs = append(msgs, nftMsg(unix.NFT_MSG_DELTABLE, unix.NLM_F_NONREC, func(ae *netlink.AttributeEncoder) {
		ae.String(unix.NFTA_TABLE_NAME, TableName)
	}))
	return sendBatch(conn, msgs)
}

func delChainMsg(name string) netlink.Message {
	return nftMsg(unix.NFT_MSG_DELCHAIN, unix.NLM_F_NONREC, func(ae *netlink.AttributeEncoder) {
		ae.String(unix.NFTA_CHAIN_TABLE, TableName)
		ae.String(unix.NFTA_CHAIN_NAME, name)
	})
}

func delRuleMsg(chain string, handle uint64) netlink.Message {
	return nftMsg(unix.NFT_MSG_DELRULE, 0, func(ae *netlink.AttributeEncoder) {
		ae.String(unix.NFTA_RULE_TABLE, TableName)
		ae.String(unix.NFTA_RULE_CHAIN, chain)
		ae.Uint64(unix.NFTA_RULE_HANDLE, handle)
	})
}

// nftMsg is one nf_tables request on our inet table, asking for an ack.
func nftMsg(typ uint16, flags netlink.HeaderFlags, attrs func(*netlink.AttributeEncoder)) netlink.Message {
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	attrs(ae)
	b, _ := ae.Encode() // only names and handles of fixed, small size
	return netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ),
			Flags: netlink.Request | netlink.Acknowledge | flags,
		},
		Data: append(nfgenmsg(unix.NFPROTO_INET, 0), b...),
	}
}

// nfgenmsg is the header every nfnetlink message starts with.
func nfgenmsg(family uint8, resID uint16) []byte {
	return binary.BigEndian.AppendUint16([]byte{family, unix.NFNETLINK_V0}, resID)
}

// sendBatch sends msgs between batch markers, so the kernel applies all of
// them or none, and collects one answer per message.
func sendBatch(conn *netlink.Conn, msgs []netlink.Message) error {
	marker := func(typ uint16) netlink.Message {
		return netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request},
			Data:   nfgenmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES),
		}
	}
	batch := append([]netlink.Message{marker(unix.NFNL_MSG_BATCH_BEGIN)}, msgs...)
	batch = append(batch, marker(unix.NFNL_MSG_BATCH_END))
	if err := conn.SetReadDeadline(time.Now().Add(ackTimeout)); err != nil {
		return fmt.Errorf("set netlink deadline: %w", err)
	}
	if _, err := conn.SendMessages(batch); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	return receiveAcks(conn, len(msgs))
}

// receiveAcks reads n answers. The kernel sends each in its own datagram,
// errors and acks alike, once it has committed or aborted the batch.
func receiveAcks(conn *netlink.Conn, n int) error {
	var errs error
	for range n {
		_, err := conn.Receive()
		var opErr *netlink.OpError
		if errors.As(err, &opErr) {
			errs = errors.Join(errs, err)
			continue
		}
		if err != nil {
			return errors.Join(errs, fmt.Errorf("receive ack: %w", err))
		}
	}
	return errs
}

package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Errors RotateKey returns.
var (
	ErrRotating     = errors.New("a key rotation is already running")
	ErrCurrentToken = errors.New("current token is not this cluster's primary token")
)

// RotateKey replaces the cluster's gossip key with next's, without a
// moment in which two live nodes cannot read each other. current must be
// the token in use (proof that the caller may change it); next must carry
// the same label.
//
// The rotation runs in three steps, each a keyring broadcast that every
// node applies and writes to its token file: install next's key beside
// the current one, make it the primary, remove the old one. Between steps
// it waits RotationSettle, long enough for push/pull to reach every live
// node. RotateKey returns once the first step is out, with how long the
// rest will take; the rest runs in the background. A node that is down
// during the whole rotation needs the new token to come back.
//
// It is safe for concurrent use; a second call while a rotation runs
// returns ErrRotating.
func (c *Cluster) RotateKey(current, next Token) (time.Duration, error) {
	if current.Label != c.label || next.Label != c.label {
		return 0, fmt.Errorf("%w: label differs from cluster label %q", ErrCurrentToken, c.label)
	}
	c.mu.Lock()
	if c.keys.keys[0] != current.Key {
		c.mu.Unlock()
		return 0, ErrCurrentToken
	}
	if c.rotating {
		c.mu.Unlock()
		return 0, ErrRotating
	}
	c.rotating = true
	epoch := c.keys.epoch
	c.mu.Unlock()

	settle := c.RotationSettle()
	steps := [][][KeySize]byte{
		{current.Key, next.Key},
		{next.Key, current.Key},
		{next.Key},
	}
	epoch = max(uint64(time.Now().UnixNano()), epoch+1)
	c.takeKeyring(&keyring{epoch: epoch, keys: steps[0]})
	c.log.Info("key rotation started", "node", c.cfg.Name, "duration_s", (2 * settle).Seconds())

	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			c.rotating = false
			c.mu.Unlock()
		}()
		for i, keys := range steps[1:] {
			select {
			case <-time.After(settle):
			case <-c.stopCh:
				c.log.Warn("key rotation interrupted; run it again to finish",
					"node", c.cfg.Name)
				return
			}
			c.takeKeyring(&keyring{epoch: epoch + uint64(i) + 1, keys: keys})
		}
		c.log.Info("key rotation finished", "node", c.cfg.Name)
	}()
	return 2 * settle, nil
}

// RotationSettle returns how long a key rotation waits between its steps:
// two push/pull intervals as memberlist scales them for the cluster's
// size, plus time for broadcasts to spread.
func (c *Cluster) RotationSettle() time.Duration {
	n := int(c.nLive.Load()) + 1
	pp := c.mlc.PushPullInterval
	if n > 32 {
		pp *= time.Duration(math.Ceil(math.Log2(float64(n))-math.Log2(32)) + 1)
	}
	return 2*pp + time.Duration(retransmits(c.mlc.RetransmitMult, n)+5)*c.mlc.GossipInterval
}

// takeKeyring applies k if it is newer than the keyring in use: installs
// its keys, makes its first the primary, removes the rest, passes it on
// and writes the token file.
func (c *Cluster) takeKeyring(k *keyring) {
	c.mu.Lock()
	if k.epoch <= c.keys.epoch {
		c.mu.Unlock()
		return
	}
	kr := c.mlc.Keyring
	var errs []error
	for _, key := range k.keys {
		errs = append(errs, kr.AddKey(key[:]))
	}
	errs = append(errs, kr.UseKey(k.keys[0][:]))
	for _, have := range kr.GetKeys() {
		if !slices.ContainsFunc(k.keys, func(key [KeySize]byte) bool {
			return string(key[:]) == string(have)
		}) {
			errs = append(errs, kr.RemoveKey(have))
		}
	}
	c.keys = k
	c.queueLocked(&broadcast{msg: encodeKeyring(k), kind: kindKeyring, ver: k.epoch})
	c.mu.Unlock()

	if err := errors.Join(errs...); err != nil {
		c.log.Error("gossip keyring change incomplete", "err", err)
	}
	c.log.Info("gossip keyring changed", "node", c.cfg.Name)
	if c.cfg.TokenFile == "" {
		return
	}
	toks := make([]Token, len(k.keys))
	for i, key := range k.keys {
		toks[i] = Token{Label: c.label, Key: key}
	}
	if err := WriteTokenFile(c.cfg.TokenFile, toks); err != nil {
		// TODO: a node whose token file is read-only keeps gossiping
		// with the rotated key but restarts with the old one, and then
		// cannot rejoin until its token file is replaced.
		c.log.Warn("token file not updated after key change", "err", err)
	}
}

// PrimaryToken returns the token whose key encrypts what this node sends.
func (c *Cluster) PrimaryToken() Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Token{Label: c.label, Key: c.keys.keys[0]}
}

func sortMembers(m []Member) {
	slices.SortFunc(m, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
}

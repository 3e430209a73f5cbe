package ossemu

import "sync"

// keyring holds the access keys requests are signed by: Options.Credentials
// at first, then changed by SetKey and RevokeKey, as a key rotation (or the
// end of an STS token) changes what OSS accepts while clients keep running.
type keyring struct {
	mu      sync.RWMutex
	m       map[string]string
	check   bool            // once on, revoking every key leaves signatures checked
	expired map[string]bool // STS keys whose token has expired
}

// SetKey makes OSS and S3 API requests signed by ak with secret valid (a
// new key of a rotation). On a server made without Credentials it turns
// signature checks on.
func (s *Server) SetKey(ak, secret string) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if s.keys.m == nil {
		s.keys.m = map[string]string{}
	}
	s.keys.m[ak] = secret
	s.keys.check = true
}

// RevokeKey makes requests signed by ak fail with InvalidAccessKeyId, as
// after a key is disabled at the end of a rotation.
func (s *Server) RevokeKey(ak string) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	delete(s.keys.m, ak)
}

// checksSignatures reports whether any key was ever configured: with none,
// every request is served unsigned.
func (s *Server) checksSignatures() bool {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	return s.keys.check
}

// keySecret returns the secret of ak.
func (s *Server) keySecret(ak string) (string, bool) {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	sk, ok := s.keys.m[ak]
	return sk, ok
}

// ExpireKey makes OSS requests signed by ak fail with 403
// SecurityTokenExpired, as when the STS token issued with ak lapses.
func (s *Server) ExpireKey(ak string) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if s.keys.expired == nil {
		s.keys.expired = map[string]bool{}
	}
	s.keys.expired[ak] = true
}

// keyExpired reports whether ExpireKey was called for ak.
func (s *Server) keyExpired(ak string) bool {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	return s.keys.expired[ak]
}

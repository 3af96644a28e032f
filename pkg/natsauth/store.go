// Package natsauth is hipersync's side of NATS decentralized authentication
// (operator mode): a store's credentials, which let it act only as itself,
// their revocation, and the operator, accounts and keys the dev run and the
// tests start an operator-mode NATS with.
//
// A store's user is its own NKEY, derived from the signing key, the
// namespace and the tenant, so that every credential ever issued to a store
// has the same public key and one revocation (the account's revocation list
// holds "everything issued to this key before now") ends them all.
package natsauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// TenantTag is the user JWT tag naming a store's tenant; a scoped signing
// key's template reads it as {{tag(tenant)}}.
const TenantTag = "tenant"

// scopeTenant is what a scoped signing key's template says for the tenant.
const scopeTenant = "{{tag(" + TenantTag + ")}}"

// InboxPrefix is the inbox prefix a store's client must use (nats.go
// CustomInboxPrefix, `nats --inbox-prefix`): its replies (publish acks, the
// messages it fetches) come there, where no other store may listen.
func InboxPrefix(ns events.Namespace, tenant string) string {
	return ns.ServiceSubject("_INBOX", tenant)
}

// StorePermissions is all a store may do: publish its own events, read
// hipersync's events about it (core subscription or its own durable
// consumer on the HIPER stream, filtered inside its subjects), and nothing
// else: no other tenant, no KV bucket, no stream management.
func StorePermissions(ns events.Namespace, tenant string) jwt.Permissions {
	hiper := ns.Stream(events.StreamHiper)
	mine := ns.HiperSubject(tenant, ">")
	return jwt.Permissions{
		Pub: jwt.Permission{
			Allow: jwt.StringList{
				ns.StoreSubject(tenant, ">"),
				// A durable named after the tenant, its filter in the
				// subject (NATS 2.10+): inside the store's own subjects.
				"$JS.API.CONSUMER.CREATE." + hiper + "." + tenant + "." + mine,
				"$JS.API.CONSUMER.INFO." + hiper + "." + tenant,
				"$JS.API.CONSUMER.DELETE." + hiper + "." + tenant,
				"$JS.API.CONSUMER.MSG.NEXT." + hiper + "." + tenant,
				"$JS.ACK." + hiper + "." + tenant + ".>",
				"$SYS.REQ.USER.INFO",
			},
			Deny: jwt.StringList{"$KV.>", "$JS.API.STREAM.>", "$JS.API.CONSUMER.DURABLE.>"},
		},
		Sub: jwt.Permission{
			Allow: jwt.StringList{mine, InboxPrefix(ns, tenant) + ".>"},
			Deny:  jwt.StringList{"$KV.>"},
		},
	}
}

// StoreScope is the scoped signing key (key: its public key) that can only
// mint store users for ns: the template is StorePermissions with the tenant
// read from the user's "tenant" tag. A leaked scoped key mints store users
// and nothing more.
func StoreScope(key string, ns events.Namespace) *jwt.UserScope {
	s := jwt.NewUserScope()
	s.Key = key
	s.Role = "hipersync-store"
	s.Description = "hipersync store credentials (hipersync tenant credentials)"
	s.Template.Permissions = StorePermissions(ns, scopeTenant)
	s.Template.Limits = jwt.Limits{NatsLimits: jwt.NatsLimits{Subs: jwt.NoLimit, Data: jwt.NoLimit, Payload: jwt.NoLimit}}
	return s
}

// StoreUserKey is tenant's user NKEY under signingKey in ns: the same for
// every credential issued to it (see the package comment).
func StoreUserKey(signingKey nkeys.KeyPair, ns events.Namespace, tenant string) (nkeys.KeyPair, error) {
	seed, err := signingKey.Seed()
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, seed)
	fmt.Fprintf(mac, "hipersync store user\x00%s\x00%s", ns.Prefix, tenant)
	return nkeys.FromRawSeed(nkeys.PrefixByteUser, mac.Sum(nil))
}

// ReadSeed reads an NKEY seed from a file: a bare seed (nsc's .nk files) or
// a decorated one.
func ReadSeed(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kp, err := jwt.ParseDecoratedNKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s holds no NKEY seed", path)
	}
	return kp, nil
}

// Minter issues store credentials with an account's signing key.
type Minter struct {
	// SigningKey is the account's signing key (HIPERSYNC_NATS_SIGNING_KEY),
	// scoped (preferred) or not, or the account's own key.
	SigningKey nkeys.KeyPair
	// Account is the account's public key.
	Account string
	NS      events.Namespace
}

// Creds returns a .creds file for tenant, expiring after expires (0:
// never). scoped mints for a scoped signing key: the JWT carries only the
// tenant tag and the key's template gives the permissions; otherwise the
// JWT carries StorePermissions.
func (m Minter) Creds(tenantID string, expires time.Duration, scoped bool) ([]byte, string, error) {
	if err := tenant.ValidID(tenantID); err != nil {
		return nil, "", err
	}
	user, err := StoreUserKey(m.SigningKey, m.NS, tenantID)
	if err != nil {
		return nil, "", err
	}
	pub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = "store " + tenantID
	if m.NS.Prefix != "" {
		uc.Name += " (namespace " + m.NS.Prefix + ")"
	}
	uc.Tags.Add(TenantTag + ":" + tenantID)
	if signer, _ := m.SigningKey.PublicKey(); signer != m.Account {
		uc.IssuerAccount = m.Account
	}
	if expires > 0 {
		uc.Expires = time.Now().Add(expires).Unix()
	}
	if scoped {
		uc.SetScoped(true)
	} else {
		uc.Permissions = StorePermissions(m.NS, tenantID)
	}
	token, err := uc.Encode(m.SigningKey)
	if err != nil {
		return nil, "", fmt.Errorf("sign the store's JWT: %w", err)
	}
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(token, seed)
	return creds, pub, err
}

// User is the server's answer to $SYS.REQ.USER.INFO: the part of
// nats-server's UserInfo hipersync reads (the server module stays out of
// the services' builds).
type User struct {
	UserID      string           `json:"user"`
	Account     string           `json:"account"`
	Permissions *UserPermissions `json:"permissions,omitempty"`
}

// UserPermissions are the permissions the server applies to a user.
type UserPermissions struct {
	Publish   *SubjectPermission `json:"publish"`
	Subscribe *SubjectPermission `json:"subscribe"`
}

// SubjectPermission is one direction's allow and deny lists.
type SubjectPermission struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

// UserInfo asks the server who nc is and what it may do ($SYS.REQ.USER.INFO).
func UserInfo(ctx context.Context, nc *nats.Conn) (*User, error) {
	msg, err := nc.RequestWithContext(ctx, "$SYS.REQ.USER.INFO", nil)
	if err != nil {
		return nil, fmt.Errorf("ask NATS who this user is: %w", err)
	}
	var resp struct {
		Data  *User `json:"data"`
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("user info: %w", err)
	}
	if resp.Error != nil || resp.Data == nil {
		return nil, fmt.Errorf("user info: %+v", resp.Error)
	}
	return resp.Data, nil
}

// ErrNotEnforced means the server would not enforce a store's permissions
// with the credentials minted: they are not handed out.
var ErrNotEnforced = errors.New("NATS does not enforce the store's permissions with this signing key")

// Issue mints tenant's credentials and proves them against the server
// before returning them: it connects as the store (dial, with the
// deployment's URL and TLS options) and checks that the permissions NATS
// applies are exactly StorePermissions. It tries the signing key as
// unscoped first and, when the server refuses a JWT with permissions (the
// key is scoped), as scoped.
func (m Minter) Issue(ctx context.Context, tenant string, expires time.Duration, dial func(opts ...nats.Option) (*nats.Conn, error)) ([]byte, string, error) {
	var lastErr error
	for _, scoped := range []bool{false, true} {
		creds, pub, err := m.Creds(tenant, expires, scoped)
		if err != nil {
			return nil, "", err
		}
		userJWT, _ := jwt.ParseDecoratedJWT(creds)
		kp, _ := jwt.ParseDecoratedUserNKey(creds)
		seed, _ := kp.Seed()
		nc, err := dial(nats.UserJWTAndSeed(userJWT, string(seed)), nats.MaxReconnects(0),
			nats.CustomInboxPrefix(InboxPrefix(m.NS, tenant)))
		if err != nil {
			lastErr = err
			continue
		}
		info, err := UserInfo(ctx, nc)
		nc.Close()
		if err != nil {
			return nil, "", err
		}
		if !samePermissions(info.Permissions, StorePermissions(m.NS, tenant)) {
			return nil, "", fmt.Errorf("%w: the server applies %+v", ErrNotEnforced, info.Permissions)
		}
		return creds, pub, nil
	}
	return nil, "", fmt.Errorf("connect with the new store credentials: %w", lastErr)
}

func samePermissions(got *UserPermissions, want jwt.Permissions) bool {
	if got == nil || got.Publish == nil || got.Subscribe == nil {
		return false
	}
	same := func(a []string, b jwt.StringList) bool {
		a, b = slices.Clone(a), slices.Clone(b)
		slices.Sort(a)
		slices.Sort(b)
		return slices.Equal(a, b)
	}
	return same(got.Publish.Allow, want.Pub.Allow) && same(got.Publish.Deny, want.Pub.Deny) &&
		same(got.Subscribe.Allow, want.Sub.Allow) && same(got.Subscribe.Deny, want.Sub.Deny)
}

// Revoke ends every credential issued to userKey before now, in account's
// revocation list: it reads the account's JWT from the server over sys (a
// system account connection), adds the revocation, signs it with
// operatorKey (the operator's key or one of its signing keys) and pushes it.
func Revoke(ctx context.Context, sys *nats.Conn, operatorKey nkeys.KeyPair, account, userKey string) error {
	msg, err := sys.RequestWithContext(ctx, "$SYS.REQ.ACCOUNT."+account+".INFO", nil)
	if err != nil {
		return fmt.Errorf("read the account's JWT: %w", err)
	}
	var info struct {
		Data *struct {
			Jwt string `json:"jwt"`
		} `json:"data"`
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &info); err != nil || info.Data == nil || info.Data.Jwt == "" {
		return fmt.Errorf("read the account's JWT: %s %v", strings.TrimSpace(string(msg.Data)), err)
	}
	ac, err := jwt.DecodeAccountClaims(info.Data.Jwt)
	if err != nil {
		return fmt.Errorf("decode the account's JWT: %w", err)
	}
	ac.RevokeAt(userKey, time.Now())
	token, err := ac.Encode(operatorKey)
	if err != nil {
		return fmt.Errorf("sign the account's JWT: %w", err)
	}
	msg, err = sys.RequestWithContext(ctx, "$SYS.REQ.ACCOUNT."+account+".CLAIMS.UPDATE", []byte(token))
	if err != nil {
		return fmt.Errorf("push the account's JWT: %w", err)
	}
	var upd struct {
		Data *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"data"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &upd); err != nil || upd.Error != nil || upd.Data == nil || upd.Data.Code != 200 {
		return fmt.Errorf("push the account's JWT: %s", strings.TrimSpace(string(msg.Data)))
	}
	return nil
}

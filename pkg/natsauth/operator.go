package natsauth

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
)

// Operator is a NATS operator with hipersync's two accounts, the way a
// production NATS is set up with nsc (docs/operations.md): the system
// account, and the HIPERSYNC account the services and stores share, with
// JetStream and a scoped signing key for store users. The dev run keeps its
// keys in its data folder; tests make fresh ones. A server trusts it through
// ServerConfig (a nats-server binary) or, in process, cmd/hipersync/devnats.
type Operator struct {
	// Dir holds the seeds and the files the CLI is pointed at.
	Dir string
	NS  events.Namespace

	Operator, System, Account, StoreSigning nkeys.KeyPair
	// AccountPub is the HIPERSYNC account's public key.
	AccountPub string

	claims     *jwt.OperatorClaims
	accountJWT string
	systemJWT  string
}

// Files the Operator writes in Dir.
const (
	ServicesCredsFile = "hipersync.creds"   // a user of the HIPERSYNC account with every permission
	SystemCredsFile   = "system.creds"      // a user of the system account
	StoreSigningFile  = "store-signing.nk"  // HIPERSYNC_NATS_SIGNING_KEY
	OperatorKeyFile   = "operator.nk"       // HIPERSYNC_NATS_OPERATOR_KEY
	accountSeedFile   = "account.nk"        // the account's own key
	systemSeedFile    = "system-account.nk" // the system account's key
	servicesSeedFile  = "hipersync-user.nk" // the services' user
	systemUserSeed    = "system-user.nk"    // the system user
	operatorJWTFile   = "operator.jwt"      // for a nats-server configuration
	accountJWTFile    = "hipersync-account.jwt"
)

// LoadOperator reads the operator's keys from dir, making the ones that are
// missing, and writes the creds files. The JWTs are signed afresh each time
// (a restart of the dev run forgets revocations).
func LoadOperator(dir string, ns events.Namespace) (*Operator, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	o := &Operator{Dir: dir, NS: ns}
	var err error
	for _, k := range []struct {
		kp     *nkeys.KeyPair
		file   string
		create func() (nkeys.KeyPair, error)
	}{
		{&o.Operator, OperatorKeyFile, nkeys.CreateOperator},
		{&o.System, systemSeedFile, nkeys.CreateAccount},
		{&o.Account, accountSeedFile, nkeys.CreateAccount},
		{&o.StoreSigning, StoreSigningFile, nkeys.CreateAccount},
	} {
		if *k.kp, err = seedFile(filepath.Join(dir, k.file), k.create); err != nil {
			return nil, err
		}
	}
	opPub, _ := o.Operator.PublicKey()
	sysPub, _ := o.System.PublicKey()
	o.AccountPub, _ = o.Account.PublicKey()
	skPub, _ := o.StoreSigning.PublicKey()

	o.claims = jwt.NewOperatorClaims(opPub)
	o.claims.Name = "hipersync"
	o.claims.SystemAccount = sysPub
	if _, err := o.claims.Encode(o.Operator); err != nil { // sets the issuer
		return nil, err
	}

	sys := jwt.NewAccountClaims(sysPub)
	sys.Name = "SYS"
	if o.systemJWT, err = sys.Encode(o.Operator); err != nil {
		return nil, err
	}
	acc := jwt.NewAccountClaims(o.AccountPub)
	acc.Name = "HIPERSYNC"
	acc.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit,
		Streams: jwt.NoLimit, Consumer: jwt.NoLimit, MaxAckPending: jwt.NoLimit,
		MemoryMaxStreamBytes: jwt.NoLimit, DiskMaxStreamBytes: jwt.NoLimit}
	acc.SigningKeys.AddScopedSigner(StoreScope(skPub, ns))
	if o.accountJWT, err = acc.Encode(o.Operator); err != nil {
		return nil, err
	}

	for _, u := range []struct {
		account  nkeys.KeyPair
		seedFile string
		creds    string
		name     string
	}{
		{o.Account, servicesSeedFile, ServicesCredsFile, "hipersync services"},
		{o.System, systemUserSeed, SystemCredsFile, "hipersync system"},
	} {
		user, err := seedFile(filepath.Join(dir, u.seedFile), nkeys.CreateUser)
		if err != nil {
			return nil, err
		}
		pub, _ := user.PublicKey()
		uc := jwt.NewUserClaims(pub)
		uc.Name = u.name
		token, err := uc.Encode(u.account)
		if err != nil {
			return nil, err
		}
		seed, _ := user.Seed()
		creds, _ := jwt.FormatUserConfig(token, seed)
		if err := os.WriteFile(filepath.Join(dir, u.creds), creds, 0o600); err != nil {
			return nil, err
		}
	}
	opJWT, _ := o.claims.Encode(o.Operator)
	if err := os.WriteFile(filepath.Join(dir, operatorJWTFile), []byte(opJWT), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, accountJWTFile), []byte(o.accountJWT), 0o600); err != nil {
		return nil, err
	}
	return o, nil
}

// Path is the path of one of the Operator's files.
func (o *Operator) Path(file string) string { return filepath.Join(o.Dir, file) }

// OperatorClaims are the operator's claims, which a server trusts.
func (o *Operator) OperatorClaims() *jwt.OperatorClaims { return o.claims }

// AccountJWTs are the system account's and the HIPERSYNC account's JWTs,
// by public key: what a server's resolver is preloaded with.
func (o *Operator) AccountJWTs() map[string]string {
	sysPub, _ := o.System.PublicKey()
	return map[string]string{sysPub: o.systemJWT, o.AccountPub: o.accountJWT}
}

// ServerConfig is the nats-server configuration that puts a server in
// operator mode: the operator trusted, the system account, and both
// accounts in an in-memory resolver that takes updates (revocations) from
// the system account.
func (o *Operator) ServerConfig() string {
	sysPub, _ := o.System.PublicKey()
	var b strings.Builder
	fmt.Fprintf(&b, "operator: %q\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n", o.Path(operatorJWTFile), sysPub)
	for pub, token := range o.AccountJWTs() {
		fmt.Fprintf(&b, "  %s: %q\n", pub, token)
	}
	b.WriteString("}\n")
	return b.String()
}

// Minter mints store credentials with the scoped store signing key.
func (o *Operator) Minter() Minter {
	return Minter{SigningKey: o.StoreSigning, Account: o.AccountPub, NS: o.NS}
}

// Issuer mints and revokes store credentials with the Operator's keys,
// against the NATS at url: what `hipersync dev` gives its console.
func (o *Operator) Issuer(url string) *Issuer {
	return &Issuer{NS: o.NS, NATS: config.NATS{URL: url, Creds: o.Path(ServicesCredsFile)}, SigningKey: o.StoreSigning,
		Account: o.AccountPub, OperatorKey: o.Operator, SystemCreds: o.Path(SystemCredsFile)}
}

func seedFile(path string, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, error) {
	if kp, err := ReadSeed(path); err == nil {
		return kp, nil
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	kp, err := create()
	if err != nil {
		return nil, err
	}
	seed, _ := kp.Seed()
	if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("keep a NATS key: %w", err)
	}
	return kp, nil
}

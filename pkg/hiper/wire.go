package hiper

// Wire types of the Hiper "Loja virtual" API (docs/hiper-api.md). Go names
// are English; the JSON tags keep Hiper's spelling. The simulator encodes the
// same types, so they are written to be lenient where Hiper is known to be:
// numbers may arrive quoted, booleans as strings, nulls anywhere.

// ZeroID is the produtoPrimarioId of a product without variations, and of a
// parent product.
const ZeroID = "00000000-0000-0000-0000-000000000000"

// Answer is what every Hiper response body carries. A non-empty Errors is a
// failure even when the HTTP status is 200.
type Answer struct {
	Errors  []string `json:"errors"`
	Message *string  `json:"message"`
}

// TokenAnswer is the body of GET /auth/gerar-token/{chaveDeSeguranca}.
type TokenAnswer struct {
	SecurityKey string `json:"chaveDeSeguranca"`
	Token       string `json:"token"`
	Answer
}

// ProductPage is the body of GET /produtos/pontoDeSincronizacao.
type ProductPage struct {
	// SyncPoint is the cursor to send next time. It is 0 in a "nothing new"
	// answer, which must never replace a stored cursor.
	SyncPoint int64     `json:"pontoDeSincronizacao"`
	Products  []Product `json:"produtos"`
	Answer
}

// Product is one Hiper product. A product with variations (grade) is a parent
// listing its children in Variations, and each child is also a product of its
// own whose ParentID is the parent's id.
type Product struct {
	ID               string            `json:"id"`
	Code             int64             `json:"codigo"`
	Barcode          string            `json:"codigoDeBarras"`
	Name             string            `json:"nome"`
	Description      string            `json:"descricao"`
	Brand            string            `json:"marca"`
	Category         string            `json:"categoria"`
	CategoryID       string            `json:"categoriaDoProdutoId"`
	Unit             string            `json:"unidade"`
	NCM              string            `json:"ncm"`
	Price            Decimal           `json:"preco"`
	Active           Bool              `json:"ativo"`
	Removed          Bool              `json:"removido"`
	Image            string            `json:"imagem"`
	AdditionalImages []AdditionalImage `json:"imagensAdicionais"`
	WeightGrams      Decimal           `json:"peso"`
	HeightCm         Decimal           `json:"altura"`
	WidthCm          Decimal           `json:"largura"`
	LengthCm         Decimal           `json:"comprimento"`
	// Stock and MinimumStock are deprecated by Hiper in favour of the stock
	// endpoint but still sent; they let a poller see stock changes in the feed.
	Stock           Decimal     `json:"quantidadeEmEstoque"`
	MinimumStock    Decimal     `json:"quantidadeMinimaEmEstoque"`
	HasVariations   Bool        `json:"grade"`
	ParentID        string      `json:"produtoPrimarioId"`
	Variations      []Variation `json:"variacao"`
	VariationActive *Bool       `json:"variacaoAtiva,omitempty"`
	WholesaleActive *Bool       `json:"atacadoAtivo,omitempty"`
	WholesalePrice  *Decimal    `json:"precoAtacado,omitempty"`
	// Color and Size are sent by older accounts only.
	Color string `json:"cor,omitempty"`
	Size  string `json:"tamanho,omitempty"`
}

// IsVariation reports whether p is the child of a product with variations.
func (p Product) IsVariation() bool { return p.ParentID != "" && p.ParentID != ZeroID }

// IsParent reports whether p is a product with variations (grade) rather
// than one of them: orders, stock and barcodes belong to its variations.
func (p Product) IsParent() bool {
	return !p.IsVariation() && (len(p.Variations) > 0 || bool(p.HasVariations))
}

// AdditionalImage is one entry of imagensAdicionais.
type AdditionalImage struct {
	URL string `json:"imagem"`
}

// Variation is a parent's summary of one of its children.
type Variation struct {
	ID            string  `json:"id"`
	Code          int64   `json:"codigo"`
	Barcode       string  `json:"codigoDeBarras"`
	TypeA         string  `json:"tipoVariacaoA"`
	NameA         string  `json:"nomeVariacaoA"`
	TypeB         string  `json:"tipoVariacaoB"`
	NameB         string  `json:"nomeVariacaoB"`
	Stock         Decimal `json:"quantidadeEmEstoque"`
	ReservedStock Decimal `json:"quantidadeEmEstoqueReservado"`
	MinimumStock  Decimal `json:"quantidadeMinimaEmEstoque"`
	Active        Bool    `json:"variacaoAtiva"`
}

// StockLevel is the body of GET /estoques/pontoDeSincronizacao: one product's
// stock. Quantities may be negative and fractional.
type StockLevel struct {
	SyncPoint    int64   `json:"pontoDeSincronizacao"`
	ProductID    string  `json:"produtoId"`
	Quantity     Decimal `json:"quantidadeEmEstoque"`
	MinimumStock Decimal `json:"quantidadeMinimaEmEstoque"`
	Answer
}

// SalesOrder is the body of POST /pedido-de-venda/.
type SalesOrder struct {
	Customer        Customer     `json:"cliente"`
	BillingAddress  Address      `json:"enderecoDeCobranca"`
	ShippingAddress Address      `json:"enderecoDeEntrega"`
	Items           []OrderItem  `json:"itens"`
	Payments        []Payment    `json:"meiosDePagamento"`
	Freight         Decimal      `json:"valorDoFrete"`
	StoreOrderID    string       `json:"numeroPedidoDeVenda,omitempty"`
	Notes           string       `json:"observacaoDoPedidoDeVenda,omitempty"`
	Marketplace     *Marketplace `json:"Marketplace,omitempty"`
}

// Customer is the buyer of a sales order.
type Customer struct {
	// Document is a CPF (11 digits) or CNPJ (14 digits), digits only.
	Document          Digits `json:"documento"`
	Email             string `json:"email"`
	StateRegistration Digits `json:"inscricaoEstadual"`
	Name              string `json:"nomeDoCliente"`
	// TradeName is required for a CNPJ.
	TradeName string `json:"nomeFantasia"`
}

// Address is a billing or shipping address.
type Address struct {
	Street     string `json:"logradouro"`
	Number     string `json:"numero"`
	Complement string `json:"complemento"`
	District   string `json:"bairro"`
	PostalCode Digits `json:"cep"`
	IBGECode   Digits `json:"codigoIbge"`
}

// OrderItem is one line of a sales order.
type OrderItem struct {
	ProductID      string   `json:"produtoId"`
	Quantity       Decimal  `json:"quantidade"`
	GrossUnitPrice *Decimal `json:"precoUnitarioBruto,omitempty"`
	NetUnitPrice   *Decimal `json:"precoUnitarioLiquido,omitempty"`
}

// Payment is one payment of a sales order.
type Payment struct {
	MethodID     int     `json:"idMeioDePagamento"`
	Installments int     `json:"parcelas"`
	Amount       Decimal `json:"valor"`
}

// Hiper payment method ids (idMeioDePagamento): the documented ones (boleto,
// credit and debit card) and those public clients agree on.
const (
	PaymentCash        = 1
	PaymentBoleto      = 1
	PaymentCheque      = 2
	PaymentCreditCard  = 4
	PaymentDebitCard   = 5
	PaymentStoreCredit = 6
	PaymentVoucher     = 11
	PaymentPix         = 12
)

// Marketplace is required by Hiper only for establishments in Santa Catarina.
type Marketplace struct {
	CNPJ string `json:"Cnpj"`
	Name string `json:"Nome"`
}

// CreateOrderAnswer is the body answering POST /pedido-de-venda/.
type CreateOrderAnswer struct {
	ID string `json:"id"`
	Answer
}

// OrderStatus is the body of GET /pedido-de-venda/eventos/{id}.
type OrderStatus struct {
	Cancelled bool         `json:"cancelado"`
	Situation int          `json:"codigoDaSituacaoDeProcessamento"`
	Code      string       `json:"codigoDoPedidoDeVenda"`
	Date      Time         `json:"data"`
	Events    []OrderEvent `json:"eventos"`
	ID        string       `json:"pedidoDeVendaId"`
	Answer
}

// Processing situations (codigoDaSituacaoDeProcessamento).
const (
	SituationProcessing = 1
	SituationProcessed  = 2
	SituationFailed     = 3
)

// OrderEvent is one entry of a sales order's history.
type OrderEvent struct {
	Type         int    `json:"codigoDoTipoDeEvento"`
	Date         Time   `json:"data"`
	Note         string `json:"observacao"`
	FiscalKey    string `json:"chaveDocumentoFiscal,omitempty"`
	FiscalType   string `json:"tipoDocumentoFiscal,omitempty"`
	FiscalXMLURL string `json:"urlArquivoXml,omitempty"`
}

// Event types (codigoDoTipoDeEvento).
const (
	EventProcessed      = 1
	EventStockSeparated = 2
	EventInvoiceIssued  = 3
	EventShipped        = 4
	EventCancelled      = 99
)

// CancelAnswer is the body answering PUT /pedido-de-venda/cancelar/{id}.
type CancelAnswer struct {
	Answer
}

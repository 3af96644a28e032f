package hiper

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

var epStock = &endpoint{
	op:     "get stock",
	method: http.MethodGet,
	name:   "GET /estoques/pontoDeSincronizacao",
}

// Stock reads one product's stock level. Hiper wants a sync point with it;
// 0 asks for the current level.
func (c *Client) Stock(ctx context.Context, token string, syncPoint int64, productID string) (StockLevel, error) {
	if strings.TrimSpace(productID) == "" {
		return StockLevel{}, errors.New("get stock: empty product id")
	}
	req := request{
		ep:   epStock,
		path: "/estoques/pontoDeSincronizacao",
		query: url.Values{
			"pontoDeSincronizacao": {strconv.FormatInt(syncPoint, 10)},
			"ProdutoId":            {productID}, // sic: capital P
		},
		token: token,
	}
	var level StockLevel
	if _, err := c.call(ctx, req, &level); err != nil {
		return StockLevel{}, err
	}
	return level, nil
}

package hiper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

var epProducts = &endpoint{
	op:       "get products",
	method:   http.MethodGet,
	name:     "GET /produtos/pontoDeSincronizacao",
	classify: classifyProducts,
	plain:    plainProducts,
}

// plainProducts: a page with products, a cursor past 0 and no error text is
// a success, whatever classifyProducts and the envelope would say (they
// look for "nothing new", a 0 cursor, errors).
func plainProducts(out any) bool {
	p := out.(*ProductPage)
	return p.SyncPoint > 0 && p.Products != nil && len(p.Errors) == 0
}

// classifyProducts recognises "nothing new". Hiper answers it with a 400
// whose body has pontoDeSincronizacao 0, produtos null and the error
// "Nenhum produto encontrado"; either sign is taken, with any status but a
// 5xx, so that the 0 never reaches a stored cursor.
func classifyProducts(status int, env envelope, body []byte) error {
	if status < 200 || status >= 500 {
		return nil
	}
	for _, e := range env.Errors {
		if strings.Contains(strings.ToLower(e), "nenhum produto") {
			return ErrNothingNew
		}
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return nil
	}
	cursor, hasCursor := raw["pontoDeSincronizacao"]
	products, hasProducts := raw["produtos"]
	if !hasCursor || !hasProducts || string(bytes.TrimSpace(cursor)) != "0" {
		return nil
	}
	switch string(bytes.TrimSpace(products)) {
	case "null", "[]":
		return ErrNothingNew
	}
	return nil
}

// Products reads one answer of products changed since syncPoint (0: all of
// them). When nothing changed it fails with ErrNothingNew: keep syncPoint.
func (c *Client) Products(ctx context.Context, token string, syncPoint int64) (ProductPage, error) {
	if syncPoint < 0 {
		return ProductPage{}, fmt.Errorf("get products: negative sync point %d", syncPoint)
	}
	req := request{
		ep:    epProducts,
		path:  "/produtos/pontoDeSincronizacao",
		query: url.Values{"pontoDeSincronizacao": {strconv.FormatInt(syncPoint, 10)}},
		token: token,
	}
	var page ProductPage
	if _, err := c.call(ctx, req, &page); err != nil {
		return ProductPage{}, err
	}
	return page, nil
}

// ProductBatch is one answer of the product feed: the products, and the
// cursor to store once they are handled.
type ProductBatch struct {
	Products  []Product
	SyncPoint int64
}

// ProductFeed follows the product feed from cursor from until Hiper has
// nothing new, one batch per answer. It stops without an error at "nothing
// new" (so an empty feed yields nothing), and with one error on any failure
// or when a cursor does not advance. Store each batch's SyncPoint after
// handling it, so a failure resumes where it stopped.
func (c *Client) ProductFeed(ctx context.Context, token string, from int64) iter.Seq2[ProductBatch, error] {
	return productFeed(ctx, from, func(ctx context.Context, cursor int64) (ProductPage, error) {
		return c.Products(ctx, token, cursor)
	})
}

func productFeed(ctx context.Context, from int64, fetch func(context.Context, int64) (ProductPage, error)) iter.Seq2[ProductBatch, error] {
	return func(yield func(ProductBatch, error) bool) {
		cursor := from
		for {
			page, err := fetch(ctx, cursor)
			if err != nil {
				if !errors.Is(err, ErrNothingNew) {
					yield(ProductBatch{}, err)
				}
				return
			}
			// Hiper's cursor only grows. One that does not would either
			// restart a full sync (0) or loop forever on the same answer.
			if page.SyncPoint <= cursor {
				yield(ProductBatch{}, &Error{
					Op: epProducts.op, Endpoint: epProducts.name, Status: http.StatusOK, Kind: ErrBadResponse,
					Err: fmt.Errorf("cursor did not advance: sent %d, got %d with %d products", cursor, page.SyncPoint, len(page.Products)),
				})
				return
			}
			cursor = page.SyncPoint
			if !yield(ProductBatch{Products: page.Products, SyncPoint: page.SyncPoint}, nil) {
				return
			}
		}
	}
}

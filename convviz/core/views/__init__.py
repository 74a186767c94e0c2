"""Views: plain functions of one capture → frozen data, by kind (mosaics, filters, colours)."""

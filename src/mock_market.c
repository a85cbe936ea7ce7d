/* mock_market.c - placeholder until its module lands. */

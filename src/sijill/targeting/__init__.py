"""Assessment of needs: the household feature view, the proxy means test, multidimensional
poverty (Alkire-Foster), hybrid designs, and an evaluation of who each design misses."""

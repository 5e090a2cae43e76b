"""Training and offline evaluation: window sampling from a clip store, `retf train`,
MoC evaluation (`retf eval`) and ablations (`retf ablate`)."""

"""Identity-specific restoration (LaDTalk's SOVQAE): a VQ autoencoder trained on one
person's own footage that restores the detail a lip-sync engine blurs."""

"""Where inputs and labels come from: the digits split, ImageFolder trees."""

// Filled by the next commit: the English dictionary.

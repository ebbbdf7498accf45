"""The pure model of callwarden: ids, values, errors and dial patterns. Imports nothing of ours."""

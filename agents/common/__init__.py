"""Pieces shared by CamalPPO and CamalDQN."""
